"""Merge-safe course sync: new files appear, edits are never overwritten, deletions restored,
upstream updates land beside edited files once, and a second sync changes nothing."""

from factoryhub.courses.sync import Action, beside_name, plan_sync, sync_course, tree_hashes


def test_plan_covers_every_case():
    upstream = {
        "new": "n1",
        "same": "s1",
        "untouched": "u2",
        "edited": "e2",
        "edited-old": "o1",
        "deleted": "d1",
        "mine-first": "m1",
    }
    local = {
        "same": "s1",
        "untouched": "u1",
        "edited": "eX",
        "edited-old": "oX",
        "mine-first": "mX",
    }
    record = {"same": "s1", "untouched": "u1", "edited": "e1", "edited-old": "o1", "deleted": "d1"}
    kinds = {a.path: (a.kind, a.target) for a in plan_sync(upstream, local, record)}
    assert kinds == {
        "new": ("copy", "new"),
        "same": ("keep", ""),
        "untouched": ("update", "untouched"),
        "edited": ("beside", beside_name("edited", "e2")),
        "edited-old": ("keep", ""),
        "deleted": ("restore", "deleted"),
        "mine-first": ("beside", beside_name("mine-first", "m1")),
    }
    assert beside_name("nb/01-intro.ipynb", "1a2b3c4d5e") == "nb/01-intro.upstream-1a2b3c4d.ipynb"


def test_sync_on_disk_edited_deleted_renamed_conflicting(tmp_path):
    source, home = tmp_path / "published", tmp_path / "home" / "courses" / "c"
    source.mkdir()
    (source / "01.ipynb").write_text("v1")
    (source / "data").mkdir()
    (source / "data" / "x.csv").write_text("1,2")
    first = sync_course(source, home)
    assert {a.kind for a in first} == {"copy"}
    assert (home / "01.ipynb").read_text() == "v1"

    assert all(a.kind == "keep" for a in sync_course(source, home))  # second start: nothing
    (home / "01.ipynb").write_text("my answers")  # edited
    (home / "data" / "x.csv").rename(home / "data" / "mine.csv")  # renamed by the learner
    (source / "01.ipynb").write_text("v2")  # upstream fixes the notebook
    (source / "02.ipynb").write_text("new lesson")
    sync_course(source, home)
    assert (home / "01.ipynb").read_text() == "my answers"  # never overwritten
    beside = [p.name for p in home.glob("01.upstream-*.ipynb")]
    assert len(beside) == 1 and (home / beside[0]).read_text() == "v2"
    assert (home / "02.ipynb").read_text() == "new lesson"
    assert (home / "data" / "x.csv").read_text() == "1,2"  # restored
    assert (home / "data" / "mine.csv").read_text() == "1,2"  # the learner's copy stays
    before = tree_hashes(home)
    again = sync_course(source, home)
    assert tree_hashes(home) == before  # no duplicates on a third start
    assert Action("beside", "01.ipynb", f"{beside[0]}") in again
