"""The install pages' branding and rendering, in process (issue 25, item 6): colours are CSS colours,
text is escaped, custom_css cannot leave its <style> element, the Content-Security-Policy allows
this page's stylesheet by hash and images only from the https logo URL, and a refused form shows
what was typed but never a secret."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from frameio_kit import App, ConfigurationError, InstallField
from ingress.install import pages
from ingress.install.branding import Branding, check_branding, contrast, ink_of, parse_color, text_on
from shared.install.models import ActionManifestEntry, HandlerManifest, Installation, WebhookRecord, compute_diff

MANIFEST = HandlerManifest(
    webhook_events=["file.ready"], actions=[ActionManifestEntry(event_type="a.b", name="Sum", description="d")]
)
FIELDS = (
    InstallField("api_key", "API key", type="password", required=True),
    InstallField("channel", "Channel"),
    InstallField("region", "Region", type="select", options=("eu", "us"), default="eu"),
)


class _Parsed(HTMLParser):
    """The text of each <style> element and the tags, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.styles: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        if self._in_style:
            self.styles.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles[-1] += data


def _render(branding: Branding, **view: str) -> tuple[str, dict[str, str]]:
    response = pages.landing(pages.View(branding, "https://kit.example.test", **view), MANIFEST)
    return bytes(response.body).decode(), dict(response.headers)


@pytest.mark.parametrize(
    "color",
    ["#0b5c4b", "#FFF", "#ffff", "#0b5c4b80", "rgb(11, 92, 75)", "rgba(11,92,75,.5)", "rgb(10% 20% 30% / 50%)",
     "hsl(160, 79%, 20%)", "hsla(160deg 79% 20% / 0.9)"],
)  # fmt: skip
def test_hex_and_functional_colours_are_accepted(color: str) -> None:
    assert all(0 <= c <= 1 for c in parse_color(color))
    check_branding(primary_color=color, accent_color=color)


@pytest.mark.parametrize(
    "color",
    ["red", "#12", "#12345", "rgb(1,2)", "rgb(300, 0, 0)", "hsl(10, 20, 30)", "url(x)", "#fff;}body{display:none",
     "var(--x)", "rgb(1,2,3) </style>", ""],
)  # fmt: skip
def test_anything_else_is_refused_at_app_construction(color: str) -> None:
    with pytest.raises(ConfigurationError, match="primary_color"):
        App(primary_color=color)
    with pytest.raises(ConfigurationError, match="accent_color"):
        App(accent_color=color)


@pytest.mark.parametrize(
    "logo",
    ["http://cdn.example.test/logo.png", "javascript:alert(1)", "https:///x.png", "https://x.test/a b.png",
     "https://x.test/a.png'; script-src *", "https://x.test/a,b.png", "data:image/png;base64,AAAA"],
)  # fmt: skip
def test_a_logo_url_must_be_plain_https(logo: str) -> None:
    with pytest.raises(ConfigurationError, match="logo_url"):
        App(logo_url=logo)


def test_custom_css_over_the_limit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="custom_css"):
        App(custom_css="a{}" * 10_000)


def test_text_on_the_primary_colour_stays_readable_and_links_read_on_white() -> None:
    assert text_on("#0b5c4b") == "#ffffff"
    assert text_on("#ffe14d") == "#111827"  # yellow: dark text
    for color in ("#ffe14d", "#8be9fd", "#6366f1", "hsl(60, 100%, 90%)"):
        assert contrast(parse_color(ink_of(color)), (1.0, 1.0, 1.0)) >= 4.5
    sheet = Branding("Bot", primary_color="#ffe14d").stylesheet
    assert "--fk-primary:#ffe14d;--fk-on-primary:#111827;" in sheet


def test_custom_css_cannot_leave_its_style_element_and_its_hash_is_the_one_the_policy_allows() -> None:
    hostile = "p{color:red}</style><script>alert(1)</script><style>\r\na::after{content:'<b>'}\x00"
    html, headers = _render(Branding("Bot", custom_css=hostile))
    parsed = _Parsed()
    parsed.feed(html)
    assert "script" not in parsed.tags and parsed.tags.count("style") == 1
    (style,) = parsed.styles
    assert style.endswith(
        "p{color:red}\\3c /style>\\3c script>alert(1)\\3c /script>\\3c style>\na::after{content:'\\3c b>'}"
    )
    allowed = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = headers["content-security-policy"]
    assert f"style-src 'sha256-{allowed}';" in policy
    assert "unsafe-inline" not in policy and "script-src" not in policy and "default-src 'none'" in policy


def test_images_are_allowed_from_the_exact_https_logo_url_only() -> None:
    logo = "https://cdn.example.test/brand/logo.png?v=2"
    html, headers = _render(Branding("Bot", logo_url=logo))
    assert f"img-src {logo};" in headers["content-security-policy"]
    assert f"<img src='{logo}' alt='Bot logo'>" in html
    _, plain = _render(Branding("Bot"))
    assert "img-src 'none';" in plain["content-security-policy"]
    assert "frame-ancestors 'none'" in plain["content-security-policy"]


def test_name_description_and_context_are_escaped_everywhere() -> None:
    evil = "<img src=x onerror=alert(1)>"
    html, _ = _render(
        Branding(evil, description=f"{evil}'\""),
        user_name=evil,
        csrf="t'><x",
        account_id="a'1",
        account_name=evil,
    )
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "value='t&#x27;&gt;&lt;x'" in html and "title='a&#x27;1'" in html


def test_every_page_frame_shows_the_branding_who_and_where_and_a_sign_out() -> None:
    branding = Branding("Review Bot", description="Posts summaries.", show_powered_by=False)
    view = pages.View(branding, "https://kit.example.test", user_name="Ada", user_email="ada@example.test", csrf="c")
    view.account_id, view.account_name, view.workspace_id, view.workspace_name = "a-1", "Acme", "w-1", "Dailies"
    html = bytes(pages.message(view, "Busy", "Try again.", 409, back=("https://kit.example.test/install", "All")).body)
    text = html.decode()
    assert "id='app-name'>Review Bot<" in text and "Posts summaries." in text
    assert "id='user'>Ada</b> <span class='who-email'>ada@example.test</span>" in text
    assert "action='https://kit.example.test/install/logout'" in text and "id='sign-out'" in text
    assert "id='context-account' title='a-1'>Acme<" in text and "id='context-workspace' title='w-1'>Dailies<" in text
    assert "id='back' href='https://kit.example.test/install'" in text
    assert "role='alert'" in text and "powered-by" not in text


def test_a_refused_form_shows_what_was_typed_except_secrets() -> None:
    view = pages.View(Branding("Bot"), "https://kit.example.test", user_name="u", csrf="c")
    view.account_id, view.workspace_id = "a", "w"
    typed = {"api_key": "typed-secret", "channel": "<b>#reviews</b>", "region": "us"}
    response = pages.status(
        view,
        FIELDS,
        None,
        MANIFEST,
        compute_diff(MANIFEST, None, "https://kit.example.test/"),
        typed=typed,
        errors={"channel": "'Channel' is too long."},
    )
    html = bytes(response.body).decode()
    assert response.status_code == 400
    assert "typed-secret" not in html
    assert "value='&lt;b&gt;#reviews&lt;/b&gt;'" in html and "<option value='us' selected>" in html
    assert "aria-invalid='true' aria-describedby='error-channel'" in html
    assert "role='alert'" in html and "type it again" in html


def test_a_stored_secret_is_never_rendered_and_may_be_left_empty() -> None:
    now = datetime.now(UTC)
    record = Installation(
        account_id="a",
        workspace_id="w",
        installed_at=now,
        updated_at=now,
        webhook=WebhookRecord(webhook_id="h", secret="s3cret-hook", events=["file.ready"], url="https://x/"),
        config={"api_key": "stored-secret", "channel": "#c", "region": "us"},
    )
    view = pages.View(Branding("Bot"), "https://kit.example.test", user_name="u", csrf="c")
    view.account_id, view.workspace_id = "a", "w"
    html = bytes(pages.status(view, FIELDS, record, MANIFEST, compute_diff(MANIFEST, record, "https://x/")).body)
    assert b"stored-secret" not in html and b"s3cret-hook" not in html
    assert b"leave empty to keep the stored value" in html and b"value='#c'" in html
    assert b"id='uninstall' href='https://kit.example.test/install/uninstall?account_id=a&amp;workspace_id=w'" in html


def test_a_short_session_secret_never_signs_a_cookie() -> None:
    """`frameio-kit ingress` refuses it at start-up (tests/test_placeholder_secrets.py); an App served
    another way (`uvicorn myapp:app`, a mount) still never signs with it."""
    from pydantic import SecretStr

    from ingress.install.session import session_key
    from shared.settings import get_settings

    settings = get_settings().model_copy(update={"session_secret": SecretStr("change-me")})
    with pytest.raises(ConfigurationError, match="FRAMEIO_KIT_SESSION_SECRET is shorter than 32"):
        session_key(settings)
    long_enough = settings.model_copy(update={"session_secret": SecretStr("s" * 32)})
    assert len(session_key(long_enough)) == 32
