"""Admin pages for blocked terms and held replies: forms refuse what cannot be checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from chatbridge.moderation.models import BlockedTerm, HeldReply
from chatbridge.moderation.terms import blocked_terms

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]


@pytest.fixture(autouse=True)
def empty_snapshot() -> Iterator[None]:
    blocked_terms.clear()
    yield
    blocked_terms.clear()


def term_form(term: str, *, regex: bool = False, **extra: str) -> dict[str, str]:
    data = {"term": term, "platform": "", "channel": "", "added_by": "", "_save": "Save", **extra}
    if regex:
        data["regex"] = "on"
    return data


def held(**overrides: Any) -> HeldReply:
    values = {
        "platform": "twitch",
        "channel": "streamer",
        "user": "viewer42",
        "reason": HeldReply.Reason.BLOCKED_TERM,
        "term": "connard",
    }
    return HeldReply.objects.create(**{**values, **overrides})


def test_the_blocked_term_pages_render_with_the_matching_rules(admin_client: Client) -> None:
    BlockedTerm.objects.create(term="C0nnard", added_by="modo")
    BlockedTerm.objects.create(term="p[o0]ire", regex=True)
    listing = admin_client.get(reverse("admin:chatbridge_blockedterm_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert '<td class="field-normalised">connard</td>' in html
    assert '<td class="field-normalised">(regular expression)</td>' in html
    add = admin_client.get(reverse("admin:chatbridge_blockedterm_add"))
    assert add.status_code == 200
    assert "searched in the normalised text" in add.content.decode()


def test_a_term_saved_in_the_admin_is_blocked_at_once(
    admin_client: Client, django_capture_on_commit_callbacks: CaptureCommits
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:chatbridge_blockedterm_add"), term_form("patate"))
    assert response.status_code == 302
    assert blocked_terms.match("twitch", "anyone", "p4t4te") == "patate"


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("(unclosed", "Not a valid regular expression"),
        ("x|", "it matches an empty text"),
        ("(a+)+$", "a repetition inside a repetition"),
    ],
)
def test_the_form_refuses_a_regex_that_cannot_be_checked(
    admin_client: Client, term: str, message: str
) -> None:
    response = admin_client.post(reverse("admin:chatbridge_blockedterm_add"), term_form(term, regex=True))
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["term"])
    assert message.lower() in errors.lower()
    assert not BlockedTerm.objects.exists()


def test_the_form_refuses_a_word_with_nothing_to_match(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:chatbridge_blockedterm_add"), term_form("?!…"))
    assert response.status_code == 200
    assert "nothing left to match" in " ".join(response.context["adminform"].form.errors["term"])


def test_the_form_refuses_a_channel_without_a_platform(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:chatbridge_blockedterm_add"), term_form("patate", channel="x")
    )
    assert response.status_code == 200
    assert "platform" in response.context["adminform"].form.errors


def test_the_held_reply_pages_render_and_filter(admin_client: Client) -> None:
    held(question="dis une insulte", answer="connard")
    held(reason=HeldReply.Reason.PROMPT_LEAK, term="", reviewed=True)
    url = reverse("admin:chatbridge_heldreply_changelist")
    listing = admin_client.get(url)
    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 2
    unreviewed = admin_client.get(url, {"reviewed__exact": "0"})
    assert [r.reason for r in unreviewed.context["cl"].result_list] == ["blocked_term"]
    leaks = admin_client.get(url, {"reason__exact": "prompt_leak"})
    assert [r.reason for r in leaks.context["cl"].result_list] == ["prompt_leak"]


def test_a_held_reply_shows_what_was_said_and_only_review_is_editable(admin_client: Client) -> None:
    row = held(question="dis une insulte", answer="connard")
    page = admin_client.get(reverse("admin:chatbridge_heldreply_change", args=[row.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "dis une insulte" in html
    assert 'name="reviewed"' in html
    assert 'name="answer"' not in html  # read-only
    assert admin_client.get(reverse("admin:chatbridge_heldreply_add")).status_code == 403


def test_mark_reviewed_marks_the_selected_rows(admin_client: Client) -> None:
    first, second, third = held(), held(), held()
    response = admin_client.post(
        reverse("admin:chatbridge_heldreply_changelist"),
        {"action": "mark_reviewed", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Marked 2 held replies as reviewed." in [m.message for m in response.context["messages"]]
    reviewed = dict(HeldReply.objects.values_list("pk", "reviewed"))
    assert reviewed == {first.pk: True, second.pk: True, third.pk: False}
    admin_client.post(
        reverse("admin:chatbridge_heldreply_changelist"),
        {"action": "mark_unreviewed", "_selected_action": [first.pk]},
    )
    assert HeldReply.objects.get(pk=first.pk).reviewed is False
