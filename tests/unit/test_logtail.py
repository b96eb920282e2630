"""Reading a learner's log happens through fh-act-as with the learner's rights, never root's
(the learner's own rights are checked on the real site: tests/integration/test_isolation_hub.py)."""

from factoryhub.spawners.logtail import read_tail_as


async def test_a_system_account_is_refused_and_nothing_is_read():
    text = await read_tail_as("nobody", "/etc/shadow")
    assert text.startswith("(no log:") and "refused" in text
    assert "root:" not in text


async def test_missing_log_is_reported_not_raised():
    text = await read_tail_as("nobody", "no/such/file.log")
    assert text.startswith("(no log:")
