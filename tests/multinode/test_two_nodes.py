"""Two `inboxlog serve` nodes on one PostgreSQL database and one S3 bucket (s3rver),
behind a real HAProxy (SMTP with the PROXY protocol, HTTP with X-Forwarded-For): each
test goes through the balancer's ports, as outside clients on 127.0.0.5 and 127.0.0.6."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import email_validator
import httpx
import pytest

from tests.support import postgres
from tests.support.dns import DnsServer
from tests.support.haproxy import OTHER_CLIENT, OUTSIDE_CLIENT, Cluster
from tests.support.mail import deliver, logged_id
from tests.support.s3 import S3Endpoint, running_s3
from tests.support.server import PortalAccount

BUCKET = "inboxlog-shared"
PREFIX = "cluster"
# The test zone (scripts/dns-for-tests.sh): example.test's SPF lists 127.0.0.6 and not
# 127.0.0.5 nor HAProxy's 127.0.0.1, and its DMARC policy is p=reject.
USER = "ann@example.test"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0 Safari/537.36")


@pytest.fixture(scope="module")
def bucket() -> Iterator[S3Endpoint]:
    with running_s3("s3rver", BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer,
            bucket: S3Endpoint) -> Iterator[Cluster]:
    """Both nodes for the module, asking only the test DNS server (127.0.0.1 stays a
    trusted network, as by default: a node mistaking HAProxy for the client would not
    check the mail at all)."""
    url = asyncio.run(postgres.create_database())
    nodes = Cluster(tmp_path_factory.mktemp("two-nodes"), url, extra_args=(
        "--dns-server", f"127.0.0.1:{dns_server.port}", "--dns-timeout", "0.25",
        "--blob-store", f"s3://{BUCKET}/{PREFIX}", "--s3-endpoint-url", bucket.url,
    ), extra_env={"AWS_ACCESS_KEY_ID": bucket.access_key_id,
                  "AWS_SECRET_ACCESS_KEY": bucket.secret_access_key,
                  "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        yield nodes.start()
    finally:
        nodes.stop()
        asyncio.run(postgres.drop_database(url))


@pytest.fixture(scope="module")
def portal(cluster: Cluster) -> PortalAccount:
    """A portal whose user is at the zone's example.test (policy enforce)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_validator, "TEST_ENVIRONMENT", True)
        return cluster.new_portal(USER, name="Two nodes")


def mail(*, subject: str = "Terms", attachment: bytes | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Ann <{USER}>", "carl@customer.example", subject
    msg["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
    msg.set_content("We agree to the terms.\n")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="terms.bin")
    return msg


def session(cluster: Cluster, source: str) -> smtplib.SMTP:
    smtp = cluster.smtp(source)
    smtp.ehlo("mx.example.test")
    return smtp


def send(cluster: Cluster, portal: PortalAccount, msg: EmailMessage,
         source: str = OTHER_CLIENT) -> tuple[int, str]:
    with session(cluster, source) as smtp:
        return deliver(cluster.nodes[0], msg, portal.bcc_address, mail_from=USER, smtp=smtp)


def emails(cluster: Cluster, portal: PortalAccount, message_id: str) -> list[Any]:
    with cluster.api(portal.user_token) as api:
        answer = api.get("/api/v1/emails", params={"message_id": message_id})
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


def new_sessions(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {node: after[node] - before.get(node, 0) for node in after}


def test_one_message_sent_to_both_nodes_at_once_is_logged_once(
        cluster: Cluster, portal: PortalAccount) -> None:
    """The same Message-ID reaching both nodes at the same moment (one SMTP session on
    each, DATA sent together) is one email: both answer its id."""
    msg = mail()
    before = cluster.balancer.served("smtp")
    sessions = [session(cluster, OTHER_CLIENT), session(cluster, OTHER_CLIENT)]
    assert new_sessions(before, cluster.balancer.served("smtp")) == {"node0": 1, "node1": 1}
    start = threading.Barrier(2)
    replies: list[tuple[int, str]] = []

    def deliver_on(smtp: smtplib.SMTP) -> None:
        smtp.mail(USER)
        smtp.rcpt(portal.bcc_address)
        start.wait()
        code, text = smtp.data(msg.as_bytes())
        replies.append((code, text.decode()))

    threads = [threading.Thread(target=deliver_on, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for smtp in sessions:
        smtp.quit()
    assert len(replies) == 2, cluster.logs()
    ids = {logged_id(reply) for reply in replies}
    assert len(ids) == 1, replies
    found = emails(cluster, portal, str(msg["Message-ID"]))
    assert [item["id"] for item in found] == list(ids)
    # And again later, on either node: still that one email.
    assert logged_id(send(cluster, portal, msg)) in ids
    assert logged_id(send(cluster, portal, msg)) in ids
    assert len(emails(cluster, portal, str(msg["Message-ID"]))) == 1


def test_sender_checks_see_the_outside_client_not_haproxy(
        cluster: Cluster, portal: PortalAccount) -> None:
    """SPF is checked for the client HAProxy passed on, on each node: from 127.0.0.6
    (in example.test's SPF) the mail passes DMARC and is logged with its checks; from
    127.0.0.5 (not in it) it is refused, DMARC failed."""
    before = cluster.balancer.served("smtp")
    passed = [logged_id(send(cluster, portal, mail(), OTHER_CLIENT)) for _ in range(2)]
    refused = [send(cluster, portal, mail(), OUTSIDE_CLIENT) for _ in range(2)]
    assert new_sessions(before, cluster.balancer.served("smtp")) == {"node0": 2, "node1": 2}
    for code, text in refused:
        assert code == 550 and text.startswith("5.7.1 DMARC check failed for example.test"), (
            code, text)
    with cluster.api(portal.user_token) as api:
        for email_id in passed:
            auth = api.get(f"/api/v1/emails/{email_id}").json()["auth"]
            assert auth["spf"] == {"result": "pass", "domain": "example.test",
                                   "scope": "mfrom"}
            assert auth["dmarc"]["result"] == "pass"


def test_failed_recipient_budget_is_the_outside_clients(
        cluster: Cluster, portal: PortalAccount) -> None:
    """Guessing logging addresses from 127.0.0.6 spends 127.0.0.6's budget (on each
    node: 50 unknown recipients within 15 minutes), after which its RCPTs answer 421;
    another client behind the same HAProxy is still served on both nodes."""
    guesser, other = "127.0.0.7", "127.0.0.8"
    blocked: set[str] = set()
    for _ in range(16):
        before = cluster.balancer.served("smtp")
        with session(cluster, guesser) as smtp:
            node = next(n for n, count in new_sessions(
                before, cluster.balancer.served("smtp")).items() if count)
            smtp.mail("guess@example.org")
            for n in range(10):
                code, _ = smtp.rcpt(f"guess{uuid.uuid4().hex[:8]}{n}@bcc.test")
                if code == 421:
                    if n == 0:
                        blocked.add(node)
                    break
                assert code == 550
        if blocked == {"node0", "node1"}:
            break
    assert blocked == {"node0", "node1"}
    before = cluster.balancer.served("smtp")
    for _ in range(2):
        with session(cluster, other) as smtp:
            smtp.mail(USER)
            assert smtp.rcpt(portal.bcc_address)[0] == 250
    assert new_sessions(before, cluster.balancer.served("smtp")) == {"node0": 1, "node1": 1}


def test_http_client_address_is_the_one_x_forwarded_for_names(
        cluster: Cluster, portal: PortalAccount) -> None:
    """A tracked send created from 127.0.0.5 on one node: its pixel fetched from 127.0.0.5
    on the other is the sender's own open (not counted), from 127.0.0.6 a person's. A
    node reading HAProxy's address instead would see one address everywhere."""
    with cluster.api(portal.user_token, source=OUTSIDE_CLIENT) as api:
        created = api.post("/api/v1/tracked-sends", json={
            "to": ["carl@customer.example"], "subject": "Offer",
            "html": "<p>Our offer</p>"})
        assert created.status_code == 201, created.text
        send_id, pixel = created.json()["id"], created.json()["pixel_url"]
    path = urlsplit(pixel).path  # the node's own address: asked through HAProxy instead
    nodes = set()
    for source in (OUTSIDE_CLIENT, OTHER_CLIENT):  # one after the other: one on each node
        with httpx.Client(base_url=cluster.base_url, timeout=30, headers={"User-Agent": CHROME},
                          transport=httpx.HTTPTransport(local_address=source)) as client:
            answer = client.get(path)
            assert answer.status_code == 200
            nodes.add(answer.headers["x-inboxlog-node"])
    assert nodes == {"node0", "node1"}
    deadline = time.monotonic() + 15
    with cluster.api(portal.user_token) as api:
        while True:
            hits = api.get(f"/api/v1/tracked-sends/{send_id}/hits").json()["items"]
            if len(hits) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        tracking = api.get(f"/api/v1/tracked-sends/{send_id}").json()["tracking"]
    assert sorted(hit["verdict"] for hit in hits) == ["person", "sender"], hits
    assert tracking["opens"] == 1 and tracking["machine_opens"] == 0


def test_an_attachment_stored_by_one_node_is_read_from_both(
        cluster: Cluster, portal: PortalAccount, bucket: S3Endpoint) -> None:
    """An attachment logged through one node lives in the shared bucket, not on that
    node's disk, and both nodes serve its bytes."""
    content = uuid.uuid4().bytes * 4096  # 64 KB, unique
    email_id = logged_id(send(cluster, portal, mail(attachment=content)))
    digest = hashlib.sha256(content).hexdigest()
    key = f"{PREFIX}/{digest[:2]}/{digest[2:4]}/{digest}"
    assert bucket.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() == content
    for node in cluster.nodes:
        assert not list(Path(node.data_dir).glob(f"blobs/**/{digest}"))
    served = {}
    with cluster.api(portal.user_token) as api:
        attachment = api.get(f"/api/v1/emails/{email_id}").json()["attachments"][0]
        assert attachment["sha256"] == digest
        for _ in range(2):
            answer = api.get(f"/api/v1/attachments/{attachment['id']}")
            assert answer.status_code == 200
            served[answer.headers["x-inboxlog-node"]] = answer.content
    assert served == {"node0": content, "node1": content}
