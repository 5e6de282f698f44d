"""Mail stand-in over real SMTP: smtplib with STARTTLS + AUTH, messages land as .eml files."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from standins.mail import MailConfig, RunningMail, eml_file_name, start_mail
from standins.tls import TlsFiles, ensure_tls
from tests import ROOT

USER = "alerts@contoso.test"
PASSWORD = "s3cret-pass"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_files(tls: TlsFiles) -> tuple[Path, Path]:
    return tls.server_cert, tls.server_key


@pytest.fixture
def client_tls(tls: TlsFiles) -> ssl.SSLContext:
    # Verify against the local CA: the client checks the server like it would a real relay.
    return tls.client_context()


@pytest.fixture
def mail(tmp_path: Path, tls_files: tuple[Path, Path]) -> Iterator[RunningMail]:
    config = MailConfig(
        outbox_dir=tmp_path / "outbox",
        username=USER,
        password=PASSWORD,
        tls_cert=tls_files[0],
        tls_key=tls_files[1],
    )
    with start_mail(config) as running:
        yield running


def _simple_message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = USER
    msg["To"] = "oncall@contoso.test"
    msg["Subject"] = "Budget 80% reached for team-research"
    msg["Message-ID"] = "<budget-80.team-research@contoso.test>"
    msg.set_content("Spent 80.00 EUR of 100.00 EUR.\n")
    return msg


def _read(path: Path) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_starttls_login_send_stores_eml(mail: RunningMail, client_tls: ssl.SSLContext) -> None:
    with smtplib.SMTP(mail.host, mail.port, timeout=5) as smtp:
        smtp.starttls(context=client_tls)
        smtp.login(USER, PASSWORD)
        smtp.send_message(_simple_message(), to_addrs=["oncall@contoso.test", "hidden@contoso.test"])

    [stored] = mail.messages()
    assert stored.name.endswith("-budget-80.team-research_contoso.test.eml")
    parsed = _read(stored)
    assert parsed["From"] == USER
    assert parsed["To"] == "oncall@contoso.test"
    assert parsed["Subject"] == "Budget 80% reached for team-research"
    assert parsed["Return-Path"] == f"<{USER}>"
    assert parsed["X-Envelope-To"] == "oncall@contoso.test, hidden@contoso.test"
    # Stored as sent on the wire: CRLF line ends (as in any RFC 5322 .eml).
    assert parsed.get_content().replace("\r\n", "\n") == "Spent 80.00 EUR of 100.00 EUR.\n"
    assert not list(mail.outbox_dir.glob(".incoming-*")), "temp files are renamed away"


def test_wrong_password_rejected(mail: RunningMail, client_tls: ssl.SSLContext) -> None:
    with smtplib.SMTP(mail.host, mail.port, timeout=5) as smtp:
        smtp.starttls(context=client_tls)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(USER, "wrong")
        # Unauthenticated sending is refused too: the relay requires AUTH.
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.send_message(_simple_message())
    assert mail.messages() == []


def test_auth_before_starttls_refused(mail: RunningMail) -> None:
    with smtplib.SMTP(mail.host, mail.port, timeout=5) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth"), "AUTH is not advertised before TLS"
        code, reply = smtp.docmd("AUTH", "PLAIN AGFsZXJ0c0Bjb250b3NvLnRlc3QAczNjcmV0LXBhc3M=")
        assert code == 538, reply  # "Encryption required for requested authentication mechanism"
    assert mail.messages() == []


def test_multipart_message_stored_intact(mail: RunningMail, client_tls: ssl.SSLContext) -> None:
    msg = _simple_message()
    msg.add_alternative("<p>Spent <b>80.00 EUR</b> of 100.00 EUR. Ünïcode ok.</p>", subtype="html")
    sent_bytes = msg.as_bytes(policy=email.policy.SMTP)
    with smtplib.SMTP(mail.host, mail.port, timeout=5) as smtp:
        smtp.starttls(context=client_tls)
        smtp.login(USER, PASSWORD)
        smtp.sendmail(USER, ["oncall@contoso.test"], sent_bytes)

    [stored] = mail.messages()
    raw = stored.read_bytes()
    assert raw.endswith(sent_bytes), "message bytes are stored exactly as sent, after envelope headers"
    parsed = _read(stored)
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert "Ünïcode" in html.get_content()


def test_require_starttls_refuses_mail_before_tls(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    config = MailConfig(
        tmp_path / "outbox", tls_cert=tls_files[0], tls_key=tls_files[1], require_starttls=True
    )
    with start_mail(config) as running, smtplib.SMTP(running.host, running.port, timeout=5) as smtp:
        smtp.ehlo()
        code, _ = smtp.mail(USER)
        assert code == 530  # "Must issue a STARTTLS command first"


def test_messages_sort_by_arrival(mail: RunningMail, client_tls: ssl.SSLContext) -> None:
    with smtplib.SMTP(mail.host, mail.port, timeout=5) as smtp:
        smtp.starttls(context=client_tls)
        smtp.login(USER, PASSWORD)
        for index in range(3):
            msg = _simple_message()
            del msg["Subject"]
            msg["Subject"] = f"alert {index}"
            smtp.send_message(msg)
    assert [_read(p)["Subject"] for p in mail.messages()] == ["alert 0", "alert 1", "alert 2"]


def test_eml_file_name_is_sortable_and_safe() -> None:
    at = dt.datetime(2025, 3, 1, 12, 0, 0, 5, tzinfo=dt.UTC)
    assert eml_file_name(at, 7, "a/b c@x") == "20250301T120000.000005Z-000007-a_b_c_x.eml"


def test_credentials_without_tls_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only allowed over TLS"):
        start_mail(MailConfig(tmp_path, username=USER, password=PASSWORD))


def test_cli_prints_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    outbox, tls_dir = tmp_path / "outbox", tmp_path / "tls"
    cmd = [sys.executable, "-m", "standins.mail", "--outbox", str(outbox), "--port", "0"]
    cmd += ["--user", USER, "--password", PASSWORD, "--tls-dir", str(tls_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY smtp://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.starttls(context=TlsFiles.in_dir(tls_dir).client_context())
            smtp.login(USER, PASSWORD)
            smtp.send_message(_simple_message())
        assert len(list(outbox.glob("*.eml"))) == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
