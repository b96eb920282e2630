"""`factoryhub announce`: admins post, list and withdraw announcements through the hub service's
REST API (``/services/factoryhub/api/announcements``), with an admin's JupyterHub API token
(from /hub/token): the hub decides who is an admin, never this command.

    factoryhub announce post "The gpu nodes are down for maintenance at 14:00" --for 6h
    factoryhub announce post "New H100 drivers" --partition gpu --until 2026-12-24T18:00
    factoryhub announce list
    factoryhub announce withdraw 3

The token comes from --token-file, else $FACTORYHUB_TOKEN, else $JUPYTERHUB_API_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from factoryhub.announcements import service_url
from factoryhub.courses.cli import site_path
from factoryhub.site import SiteError, load_site

TIMEOUT = 20.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("announce", help="post, list or withdraw announcements (admins)")
    parser.add_argument("action", choices=["post", "list", "withdraw"])
    parser.add_argument("text", nargs="?", help="post: the announcement; withdraw: its number")
    parser.add_argument("--partition", default="", help="only for this partition's users")
    lasting = parser.add_mutually_exclusive_group()
    lasting.add_argument("--for", dest="lasting", help="how long it shows: 30m, 6h, 3d")
    lasting.add_argument("--until", help="when it stops showing (ISO, UTC unless it says)")
    parser.add_argument("--token-file", type=Path, help="a file holding an admin's API token")
    parser.add_argument("--site", type=Path, default=None, help="site.toml (as `course`)")


def _token(args: argparse.Namespace, environ=os.environ) -> str:
    if args.token_file:
        return args.token_file.read_text(encoding="utf-8").strip()
    token = environ.get("FACTORYHUB_TOKEN") or environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise SystemExit(
            "error: an admin's API token is needed (make one at /hub/token): --token-file,"
            " FACTORYHUB_TOKEN or JUPYTERHUB_API_TOKEN"
        )
    return token


def request_for(args: argparse.Namespace) -> tuple[str, str, dict | None]:
    """(method, path, JSON body) for the action (pure)."""
    if args.action == "list":
        return "GET", "api/announcements", None
    if args.action == "withdraw":
        if not (args.text or "").isdigit():
            raise SystemExit("error: withdraw takes the announcement's number (see `list`)")
        return "DELETE", f"api/announcements/{args.text}", None
    if not args.text:
        raise SystemExit("error: post takes the announcement's text")
    body: dict = {"text": args.text}
    if args.partition:
        body["partition"] = args.partition
    if args.until:
        body["until"] = args.until
    else:
        body["for"] = args.lasting or "1d"
    return "POST", "api/announcements", body


def _call(url: str, method: str, token: str, body: dict | None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the site's own hub URL
        url,
        data=data,
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {"message": f"{exc.code} {exc.reason}"}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SystemExit(f"error: the hub service at {url} did not answer: {exc}") from None


def describe(item: dict) -> str:
    return f"{item['id']:>4}  until {item['expires'][:16]}  {item['audience']}: {item['text']}"


def main(args: argparse.Namespace) -> int:
    try:
        site = load_site(site_path(args.site))
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    method, path, body = request_for(args)
    status, answer = _call(f"{service_url(site)}{path}", method, _token(args), body)
    if status >= 400:
        print(f"error: {answer.get('message', status)}", file=sys.stderr)
        return 1
    if args.action == "list":
        for item in answer["announcements"]:
            print(describe(item))
        if not answer["announcements"]:
            print("No announcement is showing.")
    elif args.action == "post":
        print(f"Posted: {describe(answer)}")
    else:
        print(answer["message"])
    return 0
