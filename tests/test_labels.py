"""Table-driven tests for aotbuild.workspace.labels: parsing, matching and resolving target patterns."""

from __future__ import annotations

import pytest

from aotbuild.errors import LabelError, UserError
from aotbuild.workspace.labels import Label, Pattern, parse_label, parse_pattern, resolve

# (text, current_package, package, kind, name, negative)
VALID_PATTERNS = [
    ("//models/vision:mlp", None, "models/vision", "target", "mlp", False),
    ("//models/vision", None, "models/vision", "target", "vision", False),
    ("//models", None, "models", "target", "models", False),
    ("//:mlp", None, "", "target", "mlp", False),
    ("//models:all", None, "models", "all", None, False),
    ("//models:*", None, "models", "all", None, False),
    ("//:all", None, "", "all", None, False),
    ("//:*", None, "", "all", None, False),
    ("//models/...", None, "models", "recursive", None, False),
    ("//models/vision/...", None, "models/vision", "recursive", None, False),
    ("//...", None, "", "recursive", None, False),
    ("//models/...:all", None, "models", "recursive", None, False),
    ("//models/...:*", None, "models", "recursive", None, False),
    ("//...:*", None, "", "recursive", None, False),
    ("//...:all", None, "", "recursive", None, False),
    ("-//models/...", None, "models", "recursive", None, True),
    ("-//models:mlp", None, "models", "target", "mlp", True),
    ("-//models:all", None, "models", "all", None, True),
    ("//a_b/c-d/e.f/g+h:x.y+z=1,2@v~3-q", None, "a_b/c-d/e.f/g+h", "target", "x.y+z=1,2@v~3-q", False),
    ("//9lives:_private", None, "9lives", "target", "_private", False),
    ("//models:mlp", "other", "models", "target", "mlp", False),
    # Relative forms.
    (":mlp", "models", "models", "target", "mlp", False),
    (":mlp", "", "", "target", "mlp", False),
    (":all", "models", "models", "all", None, False),
    (":*", "", "", "all", None, False),
    ("vision:mlp", "models", "models/vision", "target", "mlp", False),
    ("vision/small:mlp", "models", "models/vision/small", "target", "mlp", False),
    ("vision/small", "models", "models/vision/small", "target", "small", False),
    ("vision/small", "", "vision/small", "target", "small", False),
    ("vision/...", "models", "models/vision", "recursive", None, False),
    ("vision/...:all", "models", "models/vision", "recursive", None, False),
    ("...", "models", "models", "recursive", None, False),
    ("...", "", "", "recursive", None, False),
    ("-:mlp", "models", "models", "target", "mlp", True),
    ("-...", "models", "models", "recursive", None, True),
    ("vision:all", "models", "models/vision", "all", None, False),
]


@pytest.mark.parametrize(("text", "current", "package", "kind", "name", "negative"), VALID_PATTERNS)
def test_parse_pattern_valid(text, current, package, kind, name, negative):
    assert parse_pattern(text, current) == Pattern(package, kind, name, negative)


@pytest.mark.parametrize(("text", "current", "package", "kind", "name", "negative"), VALID_PATTERNS)
def test_pattern_str_round_trips(text, current, package, kind, name, negative):
    pattern = Pattern(package, kind, name, negative)
    assert parse_pattern(str(pattern)) == pattern


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (Pattern("models", "recursive", None, True), "-//models/..."),
        (Pattern("", "recursive", None, False), "//..."),
        (Pattern("models", "all", None, False), "//models:all"),
        (Pattern("", "all", None, True), "-//:all"),
        (Pattern("models", "target", "mlp", False), "//models:mlp"),
        (Pattern("", "target", "mlp", False), "//:mlp"),
    ],
)
def test_pattern_str(pattern, text):
    assert str(pattern) == text


# (text, current_package, expected Label)
VALID_LABELS = [
    ("//models/vision:mlp", None, Label("models/vision", "mlp")),
    ("//models/vision", None, Label("models/vision", "vision")),
    ("//:mlp", None, Label("", "mlp")),
    (":mlp", "models", Label("models", "mlp")),
    (":mlp", "", Label("", "mlp")),
    ("vision:mlp", "models", Label("models/vision", "mlp")),
    ("vision/small", "models", Label("models/vision/small", "small")),
    ("//models:v1.2-rc+3", None, Label("models", "v1.2-rc+3")),
    ("//models:allx", None, Label("models", "allx")),
]


@pytest.mark.parametrize(("text", "current", "label"), VALID_LABELS)
def test_parse_label_valid(text, current, label):
    assert parse_label(text, current) == label


@pytest.mark.parametrize(
    ("label", "text"),
    [(Label("models/vision", "mlp"), "//models/vision:mlp"), (Label("", "mlp"), "//:mlp")],
)
def test_label_str(label, text):
    assert str(label) == text
    assert parse_label(text) == label


def test_labels_sort_by_package_then_name():
    labels = [Label("b", "a"), Label("a", "z"), Label("", "m"), Label("a", "b")]
    assert sorted(labels) == [Label("", "m"), Label("a", "b"), Label("a", "z"), Label("b", "a")]


# (text, current_package, substring expected in the error message); shared by both parsers.
INVALID_BOTH = [
    ("", None, "empty"),
    ("-", None, "nothing after '-'"),
    ("//", None, "no package and no target"),
    ("//a//b:c", None, "empty segment"),
    ("//a/b/", None, "trailing '/'"),
    ("//a/b/:c", None, "trailing '/'"),
    ("//a\\b:c", None, "backslash"),
    ("//a b:c", None, "whitespace"),
    ("//a:b ", None, "whitespace"),
    ("//a:\tb", None, "whitespace"),
    (" //a:b", None, "whitespace"),
    ("///x", None, "'///'"),
    ("///x:y", None, "must not start with '/'"),
    ("/etc", None, "absolute file path"),
    ("/etc/passwd", "models", "absolute file path"),
    ("~/models", None, "home-directory"),
    ("~", "models", "home-directory"),
    ("C:\\x", None, "Windows file path"),
    ("C:/x", None, "Windows file path"),
    ("//..", None, "outside the workspace"),
    ("//../etc:passwd", None, "outside the workspace"),
    ("//a/../b:c", None, "outside the workspace"),
    ("../x:y", "models", "outside the workspace"),
    ("..", "models", "ambiguous"),
    ("//a/./b:c", None, "'.' segments"),
    ("./x:y", "models", "'.' segments"),
    ("//a/.../b:c", None, "last package segment"),
    ("//a:b:c", None, "more than one ':'"),
    ("//a:", None, "empty"),
    ("//a:b/c", None, "cannot contain '/'"),
    ("//a:.hidden", None, "target name '.hidden' is invalid"),
    ("//a:b$c", None, "target name 'b$c' is invalid"),
    ("//a:-b", None, "target name '-b' is invalid"),
    ("//.a:b", None, "package segment '.a' is invalid"),
    ("//a$:b", None, "package segment 'a$' is invalid"),
    ("//a,b:c", None, "package segment 'a,b' is invalid"),
    ("//-a:b", None, "package segment '-a' is invalid"),
    ("--//a:b", None, "only one leading '-'"),
    ("//...:mlp", None, "':all' or ':*'"),
    ("//a/...:mlp", None, "':all' or ':*'"),
    (":mlp", None, "not inside a workspace package"),
    ("a/b:c", None, "not inside a workspace package"),
    ("...", None, "not inside a workspace package"),
    ("mlp", "models", "':mlp'"),
    ("mlp", "models", "ambiguous"),
    ("all", "models", "':all'"),
    ("-mlp", "models", "':mlp'"),
]

INVALID_LABELS_ONLY = [
    ("-//a:b", None, "cannot start with '-'"),
    ("//a:all", None, "wildcards"),
    ("//a:*", None, "wildcards"),
    ("//a/...", None, "wildcards"),
    ("//...", None, "wildcards"),
    (":all", "models", "wildcards"),
    ("//models/all", None, "'all' is reserved"),
]


@pytest.mark.parametrize(("text", "current", "expected"), INVALID_BOTH)
def test_parse_pattern_invalid(text, current, expected):
    with pytest.raises(LabelError) as info:
        parse_pattern(text, current)
    assert expected in str(info.value)


@pytest.mark.parametrize(("text", "current", "expected"), INVALID_BOTH + INVALID_LABELS_ONLY)
def test_parse_label_invalid(text, current, expected):
    with pytest.raises(LabelError) as info:
        parse_label(text, current)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "text", ["//a//b:c", "/etc", "C:\\x", "//a/../b", "mlp", "//a:b:c", "-//a:all"]
)
def test_error_quotes_input_and_shows_valid_form(text):
    with pytest.raises(LabelError) as info:
        parse_label(text, "models")
    message = str(info.value)
    assert f"'{text}'" in message
    assert "//models/vision:mlp" in message
    assert isinstance(info.value, UserError)


def test_error_makes_invisible_characters_visible():
    with pytest.raises(LabelError) as info:
        parse_label("//a:b\n")
    assert "'//a:b\\n'" in str(info.value)


@pytest.mark.parametrize("text", [None, 3, b"//a:b"])
def test_non_string_rejected(text):
    with pytest.raises(LabelError, match="expected a"):
        parse_pattern(text)  # type: ignore[arg-type]


# (pattern text, label, expected match)
MATCHES = [
    ("//models:mlp", Label("models", "mlp"), True),
    ("//models:mlp", Label("models", "cnn"), False),
    ("//models:mlp", Label("models/vision", "mlp"), False),
    ("//models:all", Label("models", "cnn"), True),
    ("//models:all", Label("models/vision", "cnn"), False),
    ("//models:all", Label("", "cnn"), False),
    ("//:all", Label("", "cnn"), True),
    ("//:all", Label("models", "cnn"), False),
    ("//models/...", Label("models", "mlp"), True),
    ("//models/...", Label("models/vision", "mlp"), True),
    ("//models/...", Label("models/vision/small", "mlp"), True),
    ("//models/...", Label("models2", "mlp"), False),
    ("//models/...", Label("models2/vision", "mlp"), False),
    ("//models/...", Label("", "models"), False),
    ("//models/vision/...", Label("models/vision2", "mlp"), False),
    ("//models/vision/...", Label("models", "vision"), False),
    ("//...", Label("", "mlp"), True),
    ("//...", Label("a/b/c", "mlp"), True),
    ("-//models/...", Label("models/vision", "mlp"), True),  # matches() ignores the sign
    ("-//models:mlp", Label("models", "mlp"), True),
]


@pytest.mark.parametrize(("text", "label", "expected"), MATCHES)
def test_pattern_matches(text, label, expected):
    assert parse_pattern(text).matches(label) is expected


WORKSPACE = [
    Label("", "root"),
    Label("models", "mlp"),
    Label("models", "cnn"),
    Label("models/vision", "resnet"),
    Label("models/vision", "vit"),
    Label("models2", "mlp"),
    Label("tools", "a"),
    Label("tools", "b"),
    Label("tools", "c"),
    Label("tools", "d"),
    Label("tools", "e"),
    Label("tools", "f"),
    Label("tools", "g"),
]


def _labels(*texts: str) -> list[Label]:
    return [parse_label(t) for t in texts]


# (patterns, current_package, expected labels as text, in order)
RESOLVE = [
    (["//models:mlp"], None, ["//models:mlp"]),
    (["//tools:a"], None, ["//tools:a"]),
    (["//models:mlp", "//models:cnn"], None, ["//models:cnn", "//models:mlp"]),
    (["//models:mlp", "//models:mlp"], None, ["//models:mlp"]),
    (["//models:all"], None, ["//models:cnn", "//models:mlp"]),
    (["//models:*"], None, ["//models:cnn", "//models:mlp"]),
    (
        ["//models/..."],
        None,
        ["//models:cnn", "//models:mlp", "//models/vision:resnet", "//models/vision:vit"],
    ),
    (["//models/...", "-//models/vision/..."], None, ["//models:cnn", "//models:mlp"]),
    (["//models/...", "-//models:all"], None, ["//models/vision:resnet", "//models/vision:vit"]),
    (["//models/...", "-//models:mlp", "-//models/vision:vit"], None, ["//models:cnn", "//models/vision:resnet"]),
    # Left to right: re-adding after a subtraction brings the target back ...
    (["//models:all", "-//models:mlp", "//models:mlp"], None, ["//models:cnn", "//models:mlp"]),
    # ... while subtracting last wins.
    (["//models:mlp", "//models:all", "-//models:mlp"], None, ["//models:cnn"]),
    # Subtracting something absent, or not selected, is harmless.
    (["//models:mlp", "-//nowhere:x"], None, ["//models:mlp"]),
    (["//models:mlp", "-//models2:mlp"], None, ["//models:mlp"]),
    (["//:all"], None, ["//:root"]),
    (["//...", "-//tools/...", "-//models/..."], None, ["//:root", "//models2:mlp"]),
    ([":mlp", "vision:vit"], "models", ["//models:mlp", "//models/vision:vit"]),
    (["...", "-vision/..."], "models", ["//models:cnn", "//models:mlp"]),
    ([":root"], "", ["//:root"]),
]


@pytest.mark.parametrize(("patterns", "current", "expected"), RESOLVE)
def test_resolve(patterns, current, expected):
    assert resolve(patterns, WORKSPACE, current) == _labels(*expected)


def test_resolve_everything_is_sorted_and_unique():
    result = resolve(["//...", "//models/...", "//tools:a"], reversed(WORKSPACE))
    assert result == sorted(set(WORKSPACE))


def test_resolve_accepts_any_iterable_once():
    assert resolve(["//models:all"], iter(WORKSPACE)) == _labels("//models:cnn", "//models:mlp")


def test_resolve_everything_on_empty_workspace():
    assert resolve(["//..."], []) == []


# (patterns, current_package, substrings expected in the message, substrings that must be absent)
RESOLVE_ERRORS = [
    (["//models:gpt"], None, ["no target 'gpt' in package '//models'", "cnn", "mlp"], ["no package"]),
    (["//models:mpl"], None, ["no target 'mpl'", "mlp"], []),
    (["//tools:zz"], None, ["no target 'zz' in package '//tools'", "a, b, c, d, e", "(and 2 more)"], [", f", ", g"]),
    # A likely typo's intended target is listed first even if alphabetically late.
    (["//tools:ff"], None, ["it has: f, a, b, c, d (and 2 more)"], []),
    (["//nowhere:x"], None, ["no package '//nowhere'"], ["no target"]),
    (["//model:mlp"], None, ["no package '//model'", "did you mean '//models'"], []),
    (["//nowhere:all"], None, ["no package '//nowhere'"], []),
    (["//models/vision/small:all"], None, ["no package '//models/vision/small'"], []),
    (["//nowhere/..."], None, ["no packages under '//nowhere/...'"], []),
    (["//models/vision/small/..."], None, ["no packages under"], []),
    ([":gpt"], "models", ["no target 'gpt' in package '//models'"], []),
    (["//:nope"], None, ["no target 'nope' in package '//'", "root"], []),
    (["-//models:mlp"], None, ["nothing to subtract from"], []),
    (["-//models:mlp", "-//..."], None, ["nothing to subtract from"], []),
    # The failing pattern is reported even after valid ones.
    (["//models:all", "//models:gpt"], None, ["no target 'gpt'"], []),
    (["//models:all", "mlp"], "models", ["ambiguous"], []),
]


@pytest.mark.parametrize(("patterns", "current", "present", "absent"), RESOLVE_ERRORS)
def test_resolve_errors(patterns, current, present, absent):
    with pytest.raises(LabelError) as info:
        resolve(patterns, WORKSPACE, current)
    message = str(info.value)
    for text in present:
        assert text in message
    for text in absent:
        assert text not in message


def test_resolve_lists_at_most_five_targets():
    with pytest.raises(LabelError) as info:
        resolve(["//tools:zz"], WORKSPACE)
    listed = str(info.value).split("it has: ")[1].split(" (and")[0]
    assert listed.split(", ") == ["a", "b", "c", "d", "e"]


def test_resolve_only_negative_on_empty_workspace_still_rejected():
    with pytest.raises(LabelError, match="nothing to subtract"):
        resolve(["-//..."], [])


def test_recursive_pattern_on_empty_subpackage_of_empty_workspace():
    with pytest.raises(LabelError, match="no packages under"):
        resolve(["//models/..."], [])
