"""Server-rendered HTML of the install pages: plain forms, no JavaScript. Every value is escaped."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from shared.install.models import HandlerManifest, Installation, InstallationDiff, InstallField
from shared.install.options import InstallOptions

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
header{display:flex;gap:1rem;align-items:center}header img{height:48px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem;margin:1rem 0}
.ok{border-color:#1a7f37;background:#f0fff4}.error{border-color:#cf222e;background:#fff5f5}
button,.button{background:#5b4cf0;color:#fff;border:0;border-radius:6px;padding:.5rem 1rem;cursor:pointer;
text-decoration:none;display:inline-block}button.danger{background:#cf222e}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}input,select,textarea{width:100%;padding:.4rem}
small{color:#57606a}li{margin:.3rem 0}
"""

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def page(options: InstallOptions, title: str, body: str, status: int = 200) -> HTMLResponse:
    logo = f"<img src='{escape(options.logo_url)}' alt=''>" if options.logo_url else ""
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · {escape(options.name)}</title><style>{_STYLE}</style></head><body>"
        f"<header>{logo}<div><h1>{escape(options.name)}</h1><small>{escape(options.description)}</small></div></header>"
        f"<main><h2 id='title'>{escape(title)}</h2>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def message(options: InstallOptions, title: str, text: str, status: int, back: str | None = None) -> HTMLResponse:
    kind = "ok" if status < 400 else "error"
    link = f"<p><a href='{escape(back)}'>Back</a></p>" if back else ""
    return page(options, title, f"<div class='card {kind}' id='message'><p>{escape(text)}</p></div>{link}", status)


def landing(options: InstallOptions, base: str, manifest: HandlerManifest) -> HTMLResponse:
    body = (
        "<p>Sign in with your Adobe account to install this integration into a Frame.io workspace.</p>"
        f"{_manifest(manifest)}<p><a class='button' id='sign-in' href='{escape(base)}/install/login'>"
        "Sign in with Adobe</a></p>"
    )
    return page(options, "Install", body)


def accounts(options: InstallOptions, base: str, items: list[dict[str, Any]], csrf: str) -> HTMLResponse:
    rows = "".join(
        f"<li><a href='{escape(base)}/install/workspaces?{escape(urlencode({'account_id': str(a.get('id'))}))}'>"
        f"{escape(str(a.get('display_name') or a.get('name') or a.get('id')))}</a></li>"
        for a in items
    )
    body = f"<p>Choose an account.</p><ul id='accounts'>{rows or '<li>No account you may install into.</li>'}</ul>"
    return page(options, "Accounts", body + _logout(base, csrf))


def workspaces(
    options: InstallOptions,
    base: str,
    account_id: str,
    items: list[dict[str, Any]],
    installed: set[str],
    *,
    retired: bool = False,
) -> HTMLResponse:
    rows = "".join(
        f"<li><a href='{escape(base)}/install/status?"
        f"{escape(urlencode({'account_id': account_id, 'workspace_id': str(w.get('id'))}))}'>"
        f"{escape(str(w.get('name') or w.get('id')))}</a>{' (installed)' if str(w.get('id')) in installed else ''}</li>"
        for w in items
    )
    intro = "Installs this integration no longer serves; open one to remove it." if retired else "Choose a workspace."
    return page(options, "Workspaces", f"<p>{intro}</p><ul id='workspaces'>{rows or '<li>None.</li>'}</ul>")


def status(
    options: InstallOptions,
    base: str,
    csrf: str,
    account_id: str,
    workspace_id: str,
    record: Installation | None,
    manifest: HandlerManifest,
    diff: InstallationDiff,
    notice: str = "",
    retired: str = "",
) -> HTMLResponse:
    """`retired` (why, when the account left `allowed_accounts`): the install can only be removed,
    so the page offers Uninstall alone and never an install form."""
    hidden = _hidden(csrf, account_id, workspace_id)
    fields = "".join(_field(f, (record.config or {}) if record else {}) for f in options.fields)
    notice_html = f"<div class='card ok' id='message'><p>{escape(notice)}</p></div>" if notice else ""
    if retired:
        why = f"<div class='card error' id='retired'><p>{escape(retired)}</p></div>"
        if record is None:
            return page(options, "Not installed", f"{notice_html}{why}")
        body = (
            f"{notice_html}{why}<div class='card' id='installed'><p>Installed.</p>{_installed(record)}</div>"
            f"<form method='post' action='{escape(base)}/install/uninstall'>{hidden}"
            "<p><button class='danger' id='uninstall'>Uninstall</button></p></form>"
        )
        return page(options, "Installed", body)
    if record is None:
        body = (
            f"{notice_html}<p>Not installed in this workspace. Installing creates:</p>{_manifest(manifest)}"
            f"<form method='post' action='{escape(base)}/install/execute'>{hidden}{fields}"
            "<input type='hidden' name='op' value='install'><p><button id='install'>Install</button></p></form>"
        )
        return page(options, "Install into workspace", body)
    changes = _diff(diff) if diff.has_changes else "<p id='up-to-date'>Everything is up to date.</p>"
    body = (
        f"{notice_html}<div class='card' id='installed'><p>Installed.</p>{_installed(record)}</div>"
        f"<h3>Changes an update applies</h3>{changes}"
        f"<form method='post' action='{escape(base)}/install/execute'>{hidden}{fields}"
        "<input type='hidden' name='op' value='update'><p><button id='update'>Update</button></p></form>"
        f"<form method='post' action='{escape(base)}/install/rotate'>{hidden}"
        "<p><button id='rotate'>Rotate signing secrets</button></p></form>"
        f"<form method='post' action='{escape(base)}/install/uninstall'>{hidden}"
        "<p><button class='danger' id='uninstall'>Uninstall</button></p></form>"
    )
    return page(options, "Installed", body)


def _hidden(csrf: str, account_id: str, workspace_id: str) -> str:
    return (
        f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"
        f"<input type='hidden' name='account_id' value='{escape(account_id)}'>"
        f"<input type='hidden' name='workspace_id' value='{escape(workspace_id)}'>"
    )


def _field(f: InstallField, current: dict[str, str]) -> str:
    value = "" if f.is_sensitive else current.get(f.name, f.default)
    name = escape(f.name)
    required = " required" if f.required and not (f.is_sensitive and f.name in current) else ""
    if f.type == "select":
        opts = "".join(
            f"<option value='{escape(o)}'{' selected' if o == value else ''}>{escape(o)}</option>" for o in f.options
        )
        control = f"<select id='field-{name}' name='field.{name}'{required}>{opts}</select>"
    elif f.type == "textarea":
        control = f"<textarea id='field-{name}' name='field.{name}'{required}>{escape(value)}</textarea>"
    else:
        kind = "password" if f.type == "password" else "text"
        control = f"<input id='field-{name}' type='{kind}' name='field.{name}' value='{escape(value)}'{required}>"
    keep = " <small>(leave empty to keep the stored value)</small>" if f.is_sensitive and f.name in current else ""
    hint = f"<small>{escape(f.description)}</small>" if f.description else ""
    return f"<label for='field-{name}'>{escape(f.label)}{keep}</label>{control}{hint}"


def _manifest(manifest: HandlerManifest) -> str:
    events = ", ".join(escape(e) for e in manifest.webhook_events)
    hook = f"<li>One webhook for: {events}</li>" if manifest.webhook_events else ""
    acts = "".join(f"<li>Action <b>{escape(a.name)}</b>: {escape(a.description)}</li>" for a in manifest.actions)
    return f"<ul id='manifest'>{hook}{acts}</ul>"


def _installed(record: Installation) -> str:
    hook = f"<li>Webhook: {', '.join(escape(e) for e in record.webhook.events)}</li>" if record.webhook else ""
    acts = "".join(f"<li>Action <b>{escape(a.name)}</b></li>" for a in record.actions)
    return f"<ul>{hook}{acts}</ul>"


def _diff(diff: InstallationDiff) -> str:
    items = [f"<li>Webhook events added: {escape(e)}</li>" for e in diff.webhook_events_added]
    items += [f"<li>Webhook events removed: {escape(e)}</li>" for e in diff.webhook_events_removed]
    items += [f"<li>Action created: <b>{escape(a.name)}</b></li>" for a in diff.actions_added]
    items += [f"<li>Action changed: <b>{escape(a.name)}</b></li>" for a in diff.actions_modified]
    items += [f"<li>Action deleted: <b>{escape(a.name)}</b></li>" for a in diff.actions_removed]
    if diff.url_changed:
        items.append("<li>Callback URL changed</li>")
    return f"<ul id='diff'>{''.join(items)}</ul>"


def _logout(base: str, csrf: str) -> str:
    return (
        f"<form method='post' action='{escape(base)}/install/logout'>"
        f"<input type='hidden' name='csrf' value='{escape(csrf)}'><p><button id='sign-out'>Sign out</button></p></form>"
    )
