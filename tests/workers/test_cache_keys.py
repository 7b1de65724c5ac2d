"""A cache key's {hash:…} over a fork's checkout: its links (loops, out of the tree) neither crash nor leak."""

from __future__ import annotations

import hashlib
import os

from workers.cache_transfer import hash_files, render_key
from workers.tree_glob import glob_tree


def test_hash_skips_loops_broken_links_and_links_out_without_walking_them(tmp_path):
    tree, host = tmp_path / "src", tmp_path / "host"
    (host / "deep").mkdir(parents=True)
    (host / "deep" / "requirements.txt").write_text("outside")
    tree.mkdir()
    (tree / "requirements.txt").write_text("flask\n")
    os.symlink("loop", tree / "loop")
    os.symlink("missing", tree / "dangling")
    os.symlink(host, tree / "host")
    expected = hashlib.sha256(b"requirements.txt\0flask\n").hexdigest()
    assert hash_files(tree, "**/requirements.txt") == expected
    assert hash_files(tree, "loop") == "none"
    assert hash_files(tree, "host/**/*.txt") == "none"  # the link is not walked: nothing beyond it counts
    assert render_key("pip-{hash:*}", tree, "refs/heads/main", "test") == f"pip-{expected}"


def test_hash_names_that_are_not_utf8(tmp_path):
    tree = tmp_path / "src"
    tree.mkdir()
    os.close(os.open(os.path.join(os.fsencode(tree), b"bad-\xff.txt"), os.O_CREAT | os.O_WRONLY))
    assert hash_files(tree, "*.txt") == hashlib.sha256(b"bad-\xff.txt\0").hexdigest()


def test_a_tree_too_big_to_walk_is_cut_short_and_said(tmp_path):
    tree = tmp_path / "src"
    for n in range(30):
        (tree / f"empty-{n:02}").mkdir(parents=True)
    (tree / "zz.txt").write_text("late")
    found = glob_tree(tree, ("**",), limit=20)
    assert found.truncated and found.leaves["**"] == []
    assert glob_tree(tree, ("**",), limit=40).leaves["**"] == ["zz.txt"]
