"""Runs in .venv-clarifai (the official clarifai SDK, unmodified) against a real taskloom
server's gRPC door: ``clarifai_driver.py <phase> <grpc url> <user id> <pat> [args...]``.
Prints one JSON object: what a user of the SDK would look at."""

from __future__ import annotations

import json
import sys
from typing import Any


def apps(url: str, user_id: str, pat: str, *rest: str) -> dict[str, Any]:
    from clarifai.client.user import User

    user = User(user_id=user_id, pat=pat, base_url=url)
    out: dict[str, Any] = {}
    app = user.create_app(app_id="e2e-cats", base_workflow="Universal", description="cats")
    out["created"] = app.id
    user.create_app(app_id="e2e-dogs")
    out["listed"] = [a.id for a in user.list_apps()]
    out["page_1_of_1"] = [a.id for a in user.list_apps(page_no=1, per_page=1)]
    out["page_2_of_1"] = [a.id for a in user.list_apps(page_no=2, per_page=1)]
    got = user.app(app_id="e2e-cats")
    out["got"] = {
        "id": got.id,
        "workflow": got.app_info.default_workflow_id,
        "description": got.app_info.description,
    }
    user.patch_app(app_id="e2e-cats", action="overwrite", description="many cats")
    out["patched"] = user.app(app_id="e2e-cats").app_info.description
    user.delete_app("e2e-dogs")
    out["after_delete"] = [a.id for a in user.list_apps()]
    try:
        user.app(app_id="e2e-dogs")
        out["deleted_app_found"] = True
    except Exception as exc:  # the SDK raises a bare Exception carrying the status
        out["deleted_app_found"] = False
        out["deleted_app_error"] = str(exc)
    return out


def refused(url: str, user_id: str, pat: str, *rest: str) -> dict[str, Any]:
    """What a wrong PAT, or another user's app, gets."""
    from clarifai.client.user import User

    out: dict[str, Any] = {}
    try:
        list(User(user_id=user_id, pat="tlk_wrong", base_url=url).list_apps())
        out["wrong_pat"] = "accepted"
    except Exception as exc:
        out["wrong_pat"] = str(exc)
    other_user, other_app = rest
    try:
        User(user_id=other_user, pat=pat, base_url=url).app(app_id=other_app)
        out["other_users_app"] = "found"
    except Exception as exc:
        out["other_users_app"] = str(exc)
    out["own_apps"] = [a.id for a in User(user_id=user_id, pat=pat, base_url=url).list_apps()]
    return out


PHASES = {"apps": apps, "refused": refused}

if __name__ == "__main__":
    phase, url, user_id, pat, *rest = sys.argv[1:]
    print(json.dumps(PHASES[phase](url, user_id, pat, *rest)))
