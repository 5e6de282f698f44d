"""Deterministic reply text whose token count is known without tokenizing it.

Every piece is exactly one token in context: lowercase words carry their leading space, and the
BPE pre-tokenizers of cl100k_base and o200k_base split " word", "." and "," into separate chunks,
so tokens never merge across pieces. Words that are not a single token in an encoding are dropped
for that encoding at start-up, so the invariant is checked once per encoding, not per request.
"""

from __future__ import annotations

import functools
import random

from standins.tokenizer import get_encoding

# Common English words plus a few on-topic ones; a text block reads better than a long list.
_WORD_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there one all we their been has when who will more no if "
    "out so said what up its about into than them can only other new some could time these two "
    "may then do first any my now such like our over man me even most made after also did many "
    "before must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come "
    "since against go came right used take three system model token price cost budget cloud data "
    "metric gateway request answer value report team service region limit usage"
)
_WORDS = _WORD_TEXT.split()
_PUNCTUATION = (".", ",")
_SENTENCE_WORDS = (5, 14)


class TextGenerator:
    """Builds replies of an exact token count for one encoding from single-token pieces."""

    def __init__(self, encoding_name: str) -> None:
        encoding = get_encoding(encoding_name)

        def one_token(text: str) -> bool:
            return len(encoding.encode_ordinary(text)) == 1

        self.encoding_name = encoding_name
        self._words = [w for w in _WORDS if one_token(f" {w}") and one_token(f" {w.capitalize()}")]
        self._openers = [w.capitalize() for w in self._words if one_token(w.capitalize())]
        if len(self._openers) < 10 or not all(one_token(p) for p in _PUNCTUATION):
            raise RuntimeError(f"encoding {encoding_name} does not fit the simulator's word list")

    def pieces(self, token_count: int, seed: int) -> list[str]:
        """``token_count`` pieces of text, one token each; joined they read as sentences."""
        rng = random.Random(seed)
        words = self._words
        pieces: list[str] = []
        if token_count > 0:
            pieces.append(rng.choice(self._openers))
        until_stop = rng.randint(*_SENTENCE_WORDS)
        while len(pieces) < token_count:
            if until_stop == 0 and pieces[-1] not in _PUNCTUATION:
                pieces.append(".")
                until_stop = rng.randint(*_SENTENCE_WORDS)
                if len(pieces) < token_count:
                    pieces.append(f" {rng.choice(words).capitalize()}")
                continue
            if until_stop == 4 and rng.random() < 0.3:
                pieces.append(",")
            else:
                pieces.append(f" {rng.choice(words)}")
            until_stop -= 1
        return pieces


@functools.cache
def text_generator(encoding_name: str) -> TextGenerator:
    return TextGenerator(encoding_name)
