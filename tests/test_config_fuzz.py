"""Fuzz: any text in any app setting loads into settings the app can use (a sender the email headers take,
a dashboard link that is a web address, finite durations) or fails at start with the documented
ConfigError naming each bad setting."""

from __future__ import annotations

import email
import email.policy
import math
from dataclasses import fields
from datetime import UTC, datetime
from urllib.parse import urlparse

from hypothesis import example, given
from hypothesis import strategies as st

from shared.config import SETTINGS, ConfigError, Settings, load_settings
from shared.email.render import Digest, build_message
from tests.support.fuzz import hostile_text
from tests.support.sections import REQUIRED

NAMES = [setting.name for setting in SETTINGS]
# Text a setting may plausibly hold, and hostile text: what a shell or a settings file can put there.
_values = st.one_of(
    hostile_text,
    st.sampled_from(["", " ", "0", "-1", "1e400", "nan", "15", "true", "https://x.example", "a@b.example"]),
    st.integers(-(10**30), 10**30).map(str),
)


def _usable(settings: Settings) -> None:
    message = build_message(
        Digest("s", "t", "<p>h</p>", ()),
        sender=settings.alerts.sender,
        recipients=["ops@example.com"],
        sent_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    received = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert [address.addr_spec for address in received["From"].addresses] == [settings.alerts.sender]
    url = settings.alerts.dashboard_url
    assert url == "" or (urlparse(url).scheme in ("http", "https") and urlparse(url).netloc)
    for section in (settings.traffic, settings.costs, settings.meters):
        for item in fields(section):
            value = getattr(section, item.name)
            assert not isinstance(value, float) or math.isfinite(value), item.name


@given(st.dictionaries(st.sampled_from(NAMES), _values, max_size=8))
@example({"ALERT_EMAIL_FROM": "alerts@example.com\r\nBcc:attacker@example.com"})  # passed the old check
@example({"ALERT_EMAIL_FROM": "al\udcc3erts@example.com"})  # a non-UTF-8 byte, as os.environ decodes it
@example({"ALERT_DASHBOARD_URL": "javascript:alert(1)"})  # became the email's dashboard link
@example({"GATEWAY_URL": "https://apim\udcff.example.net"})
def test_any_setting_value_loads_usable_settings_or_names_the_setting(environ: dict[str, str]) -> None:
    try:
        settings = load_settings({**REQUIRED, **environ})
    except ConfigError as error:
        lines = str(error).splitlines()
        assert lines and all(line.startswith("app setting") for line in lines)
        assert all(any(name in line for name in NAMES) for line in lines)
        for setting in SETTINGS:
            own = [
                line
                for line in lines
                if line.startswith((f"app setting {setting.name}=", f"app setting {setting.name} "))
            ]
            value = environ.get(setting.name, "").strip()
            assert not setting.secret or not value or all(repr(value) not in line for line in own)  # never echoed
        return
    _usable(settings)
