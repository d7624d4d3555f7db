"""The team page for a user who is not an admin: who is on the team and their roles,
read-only; inviting, changing roles, the open invitations and how each user signs in
stay the admins'. Through the port with httpx."""

from __future__ import annotations

from tests.pages.conftest import PASSWORD, Browsers, csrf_of, link_in, unique, web_account
from tests.support.server import Server
from tests.support.smtp_recorder import SmtpRecorder


def test_a_user_reads_the_team_without_the_admins_actions(
        browsers: Browsers, web_server: Server, relay: SmtpRecorder) -> None:
    """A user opens /team: the members and roles are there, no role or invitation form,
    no open invitation, no sign-in method; posting the admins' forms anyway is 403.
    The admin still sees all of it."""
    admin = web_account(web_server, unique("teamadmin"))
    admin_browser = browsers.new(admin)
    member, pending = unique("member"), unique("pending")
    for address in (member, pending):
        invited = admin_browser.post("/team/invite", data={
            "csrf": csrf_of(admin_browser.get("/team").text), "email": address,
            "role": "user"})
        assert invited.status_code == 201
    link_token = link_in(relay, member).split("token=")[1]
    user = browsers.new()
    token = csrf_of(user.get(f"/link?token={link_token}").text)
    assert user.post("/link", data={"csrf": token, "token": link_token, "name": "Mem Ber",
                                    "password": PASSWORD}).status_code == 303

    page = user.get("/team")
    assert page.status_code == 200
    assert admin.email in page.text and member in page.text and "Mem Ber" in page.text
    assert ">admin<" in page.text and ">user<" in page.text
    for hidden in ('action="/team/', 'id="invite-form"', pending, "with a password",
                   "Open invitations", "Signs in"):
        assert hidden not in page.text, hidden
    csrf = csrf_of(page.text)
    assert user.post("/team/invite", data={"csrf": csrf, "email": unique("sneaky"),
                                           "role": "admin"}).status_code == 403
    assert user.post(f"/team/{admin.portal.user_id}/role", data={
        "csrf": csrf, "role": "user"}).status_code == 403

    seen_by_admin = admin_browser.get("/team").text
    for shown in (pending, 'id="invite-form"', "with a password", 'action="/team/'):
        assert shown in seen_by_admin, shown
