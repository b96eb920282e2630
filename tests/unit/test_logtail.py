"""Reading a learner's log happens with the learner's rights (runuser), never root's."""

from factoryhub.spawners.logtail import read_tail_as


async def test_a_root_only_file_is_not_read_with_root_rights():
    # `nobody` cannot read /etc/shadow; if the read ran as root it would succeed.
    text = await read_tail_as("nobody", "/etc/shadow")
    assert text.startswith("(no log:") and "Permission denied" in text
    assert "root:" not in text


async def test_missing_log_is_reported_not_raised():
    text = await read_tail_as("nobody", "no/such/file.log")
    assert text.startswith("(no log:")
