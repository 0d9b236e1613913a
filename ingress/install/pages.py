"""Server-rendered HTML of the install pages: plain forms, no JavaScript, every value escaped.

Every page has the same frame (`page`): the integration's branding, who is signed in with a
sign-out, the account and workspace the page is about, a way back, and notices announced to
assistive technology (`role="status"` for success, `role="alert"` for errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from ingress.install.branding import Branding
from shared.install.models import HandlerManifest, Installation, InstallationDiff, InstallField

NOTICES = {
    "installed": "Installed.",
    "updated": "Updated.",
    "rotated": "Signing secrets rotated.",
    "uninstalled": "Uninstalled.",
    "signed-out": "You are signed out.",
}
"""What a redirect after a POST may announce on the page it leads to (a code travels, never text)."""


@dataclass
class View:
    """What the frame of a page knows: filled in as a request learns it, so that an error page
    still says who is signed in and which account and workspace it was about."""

    branding: Branding
    base: str
    user_name: str | None = None
    user_email: str = ""
    csrf: str = ""
    account_id: str = ""
    account_name: str = ""
    workspace_id: str = ""
    workspace_name: str = ""
    notice: str = ""
    """A code of NOTICES, from the redirect that led here."""

    def url(self, path: str, **query: str) -> str:
        return f"{self.base}/install{path}" + (f"?{urlencode(query)}" if query else "")

    def workspaces_url(self) -> str:
        return self.url("/workspaces", account_id=self.account_id)

    def status_url(self) -> str:
        return self.url("/status", account_id=self.account_id, workspace_id=self.workspace_id)


def headers(branding: Branding) -> dict[str, str]:
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": branding.content_security_policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def page(
    view: View,
    title: str,
    body: str,
    *,
    status: int = 200,
    back: tuple[str, str] | None = None,
    notice: str = "",
) -> HTMLResponse:
    """The frame around `body`. `back`: (href, label) of the way back; `notice`: rendered notice HTML
    (the redirect's notice, when none is given)."""
    b = view.branding
    logo = f"<img src='{escape(b.logo_url)}' alt='{escape(b.name)} logo'>" if b.logo_url else ""
    desc = f"<p class='app-desc' id='app-description'>{escape(b.description)}</p>" if b.description else ""
    back_html = f"<p class='back'><a id='back' href='{escape(back[0])}'>← {escape(back[1])}</a></p>" if back else ""
    if not notice and view.notice in NOTICES:
        notice = ok(NOTICES[view.notice])
    powered = "<footer id='powered-by'>Powered by frameio-kit</footer>" if b.show_powered_by else ""
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · {escape(b.name)}</title><style>{b.stylesheet}</style></head><body>"
        f"<header class='top'><div class='wrap'><div class='brand'>{logo}<div>"
        f"<p class='app-name' id='app-name'>{escape(b.name)}</p>{desc}</div></div>{_who(view)}</div></header>"
        f"<main class='wrap'>{_context(view)}{back_html}<h1 id='title'>{escape(title)}</h1>{notice}{body}</main>"
        f"{powered}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=headers(b))


def ok(text: str) -> str:
    return f"<div class='notice ok' id='message' role='status'><p>{escape(text)}</p></div>"


def alert(text: str, items: list[str] | None = None, element_id: str = "message") -> str:
    listed = "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""
    return f"<div class='notice error' id='{element_id}' role='alert'><p>{escape(text)}</p>{listed}</div>"


def _who(view: View) -> str:
    if view.user_name is None:
        return "<div class='who' id='who'><span>Not signed in</span></div>"
    email = f"<span class='who-email'>{escape(view.user_email)}</span>" if view.user_email else ""
    sign_out = (
        f"<form method='post' action='{escape(view.url('/logout'))}'>"
        f"<input type='hidden' name='csrf' value='{escape(view.csrf)}'>"
        "<button id='sign-out'>Sign out</button></form>"
        if view.csrf
        else ""
    )
    return (
        f"<div class='who' id='who'><span>Signed in as <b id='user'>{escape(view.user_name)}</b> {email}</span>"
        f"{sign_out}</div>"
    )


def _context(view: View) -> str:
    def entry(label: str, key: str, name: str, ident: str) -> str:
        if not ident:
            return f"<div><dt>{label}</dt><dd class='none' id='context-{key}'>not chosen yet</dd></div>"
        return f"<div><dt>{label}</dt><dd id='context-{key}' title='{escape(ident)}'>{escape(name or ident)}</dd></div>"

    return (
        "<dl class='context' id='context' aria-label='What this page is about'>"
        f"{entry('Account', 'account', view.account_name, view.account_id)}"
        f"{entry('Workspace', 'workspace', view.workspace_name, view.workspace_id)}</dl>"
    )


# -- pages -----------------------------------------------------------------------------------------


def message(view: View, title: str, text: str, status: int, back: tuple[str, str] | None = None) -> HTMLResponse:
    body = ok(text) if status < 400 else alert(text)
    return page(view, title, "", status=status, back=back, notice=body)


def landing(view: View, manifest: HandlerManifest) -> HTMLResponse:
    body = (
        "<p class='lead'>Sign in with the Adobe account you use for Frame.io to install this integration into "
        "one of your workspaces. Only an admin or the owner of a Frame.io account can install it.</p>"
        f"<section class='card'><h2>Installing creates</h2>{_manifest(manifest)}</section>"
        f"<p class='actions'><a class='btn' id='sign-in' href='{escape(view.url('/login'))}'>"
        "Sign in with Adobe</a></p>"
    )
    return page(view, "Install into Frame.io", body)


def accounts(view: View, items: list[dict[str, Any]]) -> HTMLResponse:
    rows = "".join(
        f"<li><a href='{escape(view.url('/workspaces', account_id=str(a.get('id'))))}'>"
        f"{escape(account_name(a))}</a>{_roles(a)}</li>"
        for a in items
    )
    empty = "<li class='empty'>No account you may install into.</li>"
    body = (
        "<p class='lead'>Choose the Frame.io account to install into. Only accounts you administer are listed.</p>"
        f"<ul class='pick' id='accounts'>{rows or empty}</ul>"
    )
    return page(view, "Choose an account", body)


def workspaces(view: View, items: list[dict[str, Any]], installed: set[str], *, retired: bool = False) -> HTMLResponse:
    def row(w: dict[str, Any]) -> str:
        ident = str(w.get("id"))
        badge = " <span class='badge on'>Installed</span>" if ident in installed else ""
        href = view.url("/status", account_id=view.account_id, workspace_id=ident)
        return f"<li><a href='{escape(href)}'>{escape(workspace_name(w))}</a>{badge}</li>"

    intro = (
        "This integration no longer serves this account; open an install to remove it."
        if retired
        else "Choose the workspace to install into, or one already installed to update or remove it."
    )
    body = (
        f"<p class='lead'>{intro}</p>"
        f"<ul class='pick' id='workspaces'>{''.join(row(w) for w in items) or '<li class=empty>None.</li>'}</ul>"
    )
    return page(view, "Choose a workspace", body, back=(view.url(""), "All accounts"))


def status(
    view: View,
    fields: tuple[InstallField, ...],
    record: Installation | None,
    manifest: HandlerManifest,
    diff: InstallationDiff,
    *,
    retired: str = "",
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The install form, or the install and what can be done with it. `retired` (why, when the
    account left `allowed_accounts`): Uninstall alone, never a form. `typed`/`errors`: a form the
    server refused, shown again with what was typed (never a sensitive value) and why."""
    back = (view.workspaces_url(), "Workspaces")
    status_code = 400 if errors else 200
    notice = alert("The form has problems; nothing was changed.", list(errors.values())) if errors else ""
    stored = (record.config or {}) if record else {}
    form_fields = "".join(_field(f, stored, typed, (errors or {}).get(f.name)) for f in fields)
    hidden = _hidden(view)
    if retired:
        why = alert(retired, element_id="retired")
        if record is None:
            return page(view, "Not installed", why, back=back, notice=notice)
        body = f"{why}<section class='card' id='installed'>{_installed(record)}</section>{_remove(view)}"
        return page(view, "Installed", body, back=back, notice=notice)
    settings = f"<h2>Settings</h2>{form_fields}" if fields else ""
    settings_below = f"<h3>Settings</h3>{form_fields}" if fields else ""
    if record is None:
        body = (
            f"<section class='card'><h2>Installing creates</h2>{_manifest(manifest)}</section>"
            f"<form class='card' method='post' action='{escape(view.url('/execute'))}' novalidate>{hidden}"
            f"{settings}<input type='hidden' name='op' value='install'>"
            "<p class='actions'><button class='btn' id='install'>Install</button></p></form>"
        )
        return page(view, "Install into workspace", body, status=status_code, back=back, notice=notice)
    changes = (
        f"<p class='muted'>This release changes what is installed:</p>{_diff(diff)}"
        if diff.has_changes
        else "<p id='up-to-date' class='muted'>Everything is up to date.</p>"
    )
    body = (
        f"<section class='card' id='installed'>{_installed(record)}</section>"
        f"<form class='card' method='post' action='{escape(view.url('/execute'))}' novalidate>{hidden}"
        f"<h2>Update</h2>{changes}{settings_below}"
        "<input type='hidden' name='op' value='update'>"
        "<p class='actions'><button class='btn' id='update'>Update</button></p></form>"
        f"<form class='card' method='post' action='{escape(view.url('/rotate'))}'>{hidden}"
        "<h2>Signing secrets</h2><p class='muted'>Creates new signing secrets for the webhook and actions; the old "
        "ones keep working for a grace period.</p>"
        "<p class='actions'><button class='btn secondary' id='rotate'>Rotate signing secrets</button></p></form>"
        f"{_remove(view)}"
    )
    return page(view, "Installed", body, status=status_code, back=back, notice=notice)


def confirm_uninstall(view: View, record: Installation, *, unconfirmed: bool = False) -> HTMLResponse:
    """The confirmation an uninstall needs; `unconfirmed`: a POST came without the box ticked."""
    notice = alert("Tick the box to confirm. Nothing was removed.") if unconfirmed else ""
    where = escape(view.workspace_name or view.workspace_id)
    body = (
        "<section class='card danger-zone'><h2>This removes from Frame.io</h2>"
        f"{_installed(record, heading=False)}"
        "<p class='muted'>Events from this workspace are refused from then on, and the install's settings are "
        "deleted. Installing again later creates everything anew.</p></section>"
        f"<form class='card' method='post' action='{escape(view.url('/uninstall'))}'>{_hidden(view)}"
        "<label class='check' for='confirm'><input type='checkbox' id='confirm' name='confirm' value='yes' required>"
        f"<span>Yes, uninstall {escape(view.branding.name)} from {where}.</span></label>"
        "<p class='actions'><button class='btn danger' id='confirm-uninstall'>Uninstall</button>"
        f"<a class='btn secondary' id='cancel' href='{escape(view.status_url())}'>Cancel</a></p></form>"
    )
    return page(
        view,
        "Uninstall from workspace",
        body,
        status=400 if unconfirmed else 200,
        back=(view.status_url(), "Back to the install"),
        notice=notice,
    )


# -- pieces ----------------------------------------------------------------------------------------


def account_name(account: Mapping[str, Any]) -> str:
    return str(account.get("display_name") or account.get("name") or account.get("id"))


def workspace_name(workspace: Mapping[str, Any]) -> str:
    return str(workspace.get("name") or workspace.get("id"))


def _roles(account: Mapping[str, Any]) -> str:
    roles = account.get("roles")
    shown = [str(r) for r in roles if str(r) in ("owner", "admin")] if isinstance(roles, list) else []
    return f" <span class='badge'>{escape(shown[0])}</span>" if shown else ""


def _hidden(view: View) -> str:
    return (
        f"<input type='hidden' name='csrf' value='{escape(view.csrf)}'>"
        f"<input type='hidden' name='account_id' value='{escape(view.account_id)}'>"
        f"<input type='hidden' name='workspace_id' value='{escape(view.workspace_id)}'>"
    )


def _remove(view: View) -> str:
    return (
        "<section class='card danger-zone'><h2>Remove</h2><p class='muted'>Deletes the webhook and actions from "
        "this workspace. You are asked to confirm first.</p>"
        f"<p class='actions'><a class='btn danger-outline' id='uninstall' "
        f"href='{escape(view.url('/uninstall', account_id=view.account_id, workspace_id=view.workspace_id))}'>"
        "Uninstall…</a></p></section>"
    )


def _field(f: InstallField, stored: Mapping[str, str], typed: Mapping[str, str] | None, error: str | None) -> str:
    if f.is_sensitive:
        value = ""  # never sent back to the browser, stored or typed
    elif typed is not None:
        value = typed.get(f.name, "")
    else:
        value = stored.get(f.name, f.default)
    name = escape(f.name)
    kept = f.is_sensitive and f.name in stored
    required = " required" if f.required and not kept else ""
    described = []
    hint = ""
    if f.description:
        hint = f"<span class='hint' id='hint-{name}'>{escape(f.description)}</span>"
        described.append(f"hint-{name}")
    problem = ""
    if error:
        problem = f"<span class='field-error' id='error-{name}'>{escape(error)}</span>"
        described.append(f"error-{name}")
    aria = (" aria-invalid='true'" if error else "") + (
        f" aria-describedby='{' '.join(described)}'" if described else ""
    )
    attrs = f"id='field-{name}' name='field.{name}'{required}{aria}"
    if f.type == "select":
        opts = "".join(
            f"<option value='{escape(o)}'{' selected' if o == value else ''}>{escape(o)}</option>" for o in f.options
        )
        control = f"<select {attrs}>{opts}</select>"
    elif f.type == "textarea":
        control = f"<textarea {attrs}>{escape(value)}</textarea>"
    else:
        kind = "password" if f.type == "password" else "text"
        auto = " autocomplete='new-password'" if kind == "password" else ""
        control = f"<input type='{kind}' {attrs} value='{escape(value)}'{auto}>"
    if f.is_sensitive and typed is not None and not error and not kept:
        problem = "<span class='hint'>Not sent back to the browser: type it again.</span>"
    note = " <small>(leave empty to keep the stored value)</small>" if kept else ""
    optional = " <small>(optional)</small>" if not f.required and not kept and f.type != "select" else ""
    return f"<label for='field-{name}'>{escape(f.label)}{note}{optional}</label>{control}{hint}{problem}"


def _manifest(manifest: HandlerManifest) -> str:
    events = ", ".join(escape(e) for e in manifest.webhook_events)
    hook = f"<li>One webhook for: {events}</li>" if manifest.webhook_events else ""
    acts = "".join(f"<li>Action <b>{escape(a.name)}</b>: {escape(a.description)}</li>" for a in manifest.actions)
    return f"<ul class='plain' id='manifest'>{hook}{acts}</ul>"


def _installed(record: Installation, *, heading: bool = True) -> str:
    hook = f"<li>Webhook for: {', '.join(escape(e) for e in record.webhook.events)}</li>" if record.webhook else ""
    acts = "".join(f"<li>Action <b>{escape(a.name)}</b></li>" for a in record.actions)
    when = record.updated_at.strftime("%Y-%m-%d %H:%M UTC")
    top = (
        f"<h2>In this workspace <span class='badge on'>active</span></h2>"
        f"<p class='muted'>Last changed {escape(when)}.</p>"
        if heading
        else ""
    )
    return f"{top}<ul class='plain'>{hook}{acts}</ul>"


def _diff(diff: InstallationDiff) -> str:
    items = [f"<li>Webhook events added: {escape(e)}</li>" for e in diff.webhook_events_added]
    items += [f"<li>Webhook events removed: {escape(e)}</li>" for e in diff.webhook_events_removed]
    items += [f"<li>Action created: <b>{escape(a.name)}</b></li>" for a in diff.actions_added]
    items += [f"<li>Action changed: <b>{escape(a.name)}</b></li>" for a in diff.actions_modified]
    items += [f"<li>Action deleted: <b>{escape(a.name)}</b></li>" for a in diff.actions_removed]
    if diff.url_changed:
        items.append("<li>Callback URL changed</li>")
    return f"<ul class='plain' id='diff'>{''.join(items)}</ul>"
