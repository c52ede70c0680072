"""Watched topics: patterns as data, inflections, flags on clause changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.analysis.clauses import compare
from tracker.analysis.segments import segment
from tracker.analysis.topics import Topic, default_topics, flags_for
from tracker.config.settings import parse_config
from tracker.core.errors import ConfigError

TOPICS = {t.id: t for t in default_topics()}


def test_default_topic_ids() -> None:
    assert set(TOPICS) == {
        "law-enforcement",
        "facial-recognition",
        "military",
        "surveillance",
        "elections",
        "children",
        "training-data",
    }


@pytest.mark.parametrize(
    ("topic", "text", "matched"),
    [
        ("law-enforcement", "used by Police departments", ["Police"]),
        ("law-enforcement", "predictive policing tools", ["predictive policing"]),
        ("law-enforcement", "law-enforcement agencies", ["law-enforcement"]),
        ("facial-recognition", "a face search engine", ["face search"]),
        ("facial-recognition", "storing biometric templates", ["biometric"]),
        (
            "facial-recognition",
            "identify people based on their faces",
            ["identify people based on their faces"],
        ),
        ("military", "Weapons development", ["Weapons"]),
        ("military", "the military’s use", ["military’s"]),
        ("surveillance", "surveilling journalists", ["surveilling"]),
        ("elections", "interfering with elections", ["elections"]),
        ("children", "content that harms a minor", ["a minor"]),
        (
            "training-data",
            "we use your content to train our models",
            ["use your content", "train our models"],
        ),
        ("training-data", "you can opt out of training", ["opt out"]),
    ],
)
def test_patterns_match_inflected_forms(topic: str, text: str, matched: list[str]) -> None:
    assert TOPICS[topic].matches(text) == matched


@pytest.mark.parametrize(
    ("topic", "text"),
    [
        ("law-enforcement", "our privacy policy applies"),  # "polic…" is not police
        ("children", "minor changes to these terms"),
        ("elections", "race, political opinions, religious beliefs"),
        ("training-data", "you may opt out of arbitration within 30 days"),
        ("military", "we use arms-length pricing"),
    ],
)
def test_patterns_do_not_match_look_alikes(topic: str, text: str) -> None:
    assert TOPICS[topic].matches(text) == []


def test_added_and_removed_bans_are_both_flagged() -> None:
    old = "- Military and warfare\n"
    new = "- Gambling\n"
    flags = flags_for(compare(segment(old), segment(new)), default_topics())
    assert [(f.topic, f.kind, f.matched) for f in flags] == [
        ("military", "removed", ("Military", "warfare"))
    ]


def test_a_modified_clause_is_flagged_only_where_the_edit_touches_a_topic() -> None:
    old = "- no use of biometric data for surveillance, including use by police in the US\n"
    new = "- no use of biometric data for surveillance\n"
    flags = flags_for(compare(segment(old), segment(new)), default_topics())
    assert [(f.topic, f.kind, f.matched) for f in flags] == [
        ("law-enforcement", "modified", ("police",))
    ]


def test_cosmetic_and_moved_clauses_raise_no_flags() -> None:
    old = "- Weapons policy updated 3 days ago\n- other\n"
    new = "- other\n- Weapons policy updated 4 days ago\n"
    assert flags_for(compare(segment(old), segment(new)), default_topics()) == []


def test_a_user_adds_a_topic_in_tracker_toml_without_code() -> None:
    text = """
[[topics]]
id = "healthcare"
label = "health care"
patterns = ["medical advice", "diagnos*", "re:\\\\bclinic(?:al|s)?\\\\b"]

[[topics]]
id = "military"
label = "armed conflict"
patterns = ["tanks"]
"""
    config = parse_config(text, name="tracker.toml", root=Path("/tmp"))
    topics = {t.id: t for t in config.topics}
    assert topics["healthcare"].matches("no Diagnosis by clinical tools") == [
        "Diagnosis",
        "clinical",
    ]
    assert topics["military"].label == "armed conflict"  # replaced, not merged
    assert len(topics) == 8
    flags = flags_for(
        compare(segment("- a\n"), segment("- a\n- gives medical advice\n")), config.topics
    )
    assert [(f.topic, f.kind) for f in flags] == [("healthcare", "added")]


def test_default_topics_can_be_turned_off() -> None:
    text = (
        '[analysis]\ndefault_topics = false\n[[topics]]\nid = "x"\nlabel = "X"\npatterns = ["x"]\n'
    )
    assert [t.id for t in parse_config(text, name="t.toml", root=Path("/tmp")).topics] == ["x"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            'id = "Bad Id"\nlabel = "l"\npatterns = ["p"]',
            "topic 'Bad Id': key 'id' must be a lowercase slug",
        ),
        (
            'id = "t"\nlabel = "l"\npatterns = []',
            "topic 't': key 'patterns' must be a non-empty list",
        ),
        (
            'id = "t"\nlabel = "l"\npatterns = ["re:(unclosed"]',
            "topic 't': key 'patterns': invalid pattern",
        ),
        (
            'id = "t"\nlabel = "l"\npatterns = ["p"]\nkeywords = 1',
            "topic 't': unknown key 'keywords'",
        ),
    ],
)
def test_topic_config_errors(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match="tracker.toml: " + message.replace("(", r"\(")):
        parse_config("[[topics]]\n" + entry + "\n", name="tracker.toml", root=Path("/tmp"))


def test_topic_is_plain_data() -> None:
    topic = Topic("x", "X", ("face search*",))
    assert topic.matches("Face-searching apps") == ["Face-searching"]


@pytest.mark.timeout(10)  # a hang guard: these took 24 s and more before the fix
@pytest.mark.parametrize("text", ["identify " + "'" * 28 + " x", "identify " + "' " * 2000])
def test_patterns_never_backtrack_catastrophically(text: str) -> None:
    for topic in default_topics():
        topic.matches(text)
    assert TOPICS["facial-recognition"].matches("identify people from their faces") == [
        "identify people from their faces"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "If OpenAI suspects that you have violated these Terms, we may suspend your account.",
        "We use automated systems to combat spam, fraud and abuse.",
        "Our growth has been explosive.",
        "Users who face harassment can report it; we will identify the responsible account.",
        "We may use your content to provide and maintain the Services.",
    ],
)
def test_review_false_positives_stay_fixed(text: str) -> None:
    assert {t.id: t.matches(text) for t in default_topics() if t.matches(text)} == {}


def test_pattern_edges() -> None:
    assert Topic("a", "A", ("attorney",)).matches("two attorneys") == ["attorneys"]
    assert Topic("u", "U", ("U.S.",)).matches("made in the U.S. today") == ["U.S."]
    assert Topic("c", "C", ("(CSAM)",)).matches("material (CSAM) here") == ["(CSAM)"]
    assert Topic("q", "Q", ("people's faces",)).matches("people’s faces") == ["people’s faces"]


def test_a_quote_style_edit_inside_a_match_is_not_a_flag() -> None:
    old = "- Don't use it to identify a person's face; we may suspend accounts.\n"
    new = "- Don’t use it to identify a person’s face; we may terminate accounts.\n"
    assert flags_for(compare(segment(old), segment(new)), default_topics()) == []


def test_inline_flags_in_a_user_pattern_are_a_config_error() -> None:
    text = '[[topics]]\nid = "x"\nlabel = "X"\npatterns = ["re:(?x) a b", "c"]\n'
    with pytest.raises(ConfigError, match="do not combine into one expression"):
        parse_config(text, name="tracker.toml", root=Path("/tmp"))


def test_built_in_topics_compile() -> None:
    """default_topics() skips the pattern checks a user's topics get; this is that check."""
    import re

    from tracker.analysis.topics import default_topics, parse_topics, pattern_regex

    topics = default_topics()
    assert topics
    for topic in topics:
        for pattern in topic.patterns:
            re.compile(pattern_regex(pattern))
        assert topic.regex.pattern
        for rule in topic.context:
            for pattern in (*rule.patterns, *rule.near, *rule.not_near):
                re.compile(pattern_regex(pattern))
    import tomllib
    from importlib import resources

    text = resources.files("tracker").joinpath("topics.toml").read_text(encoding="utf-8")
    assert parse_topics(tomllib.loads(text)["topics"], "check") == topics


# --- context: a keyword in passing is not a topic (issue 14) --------------------------------


def found(text: str) -> dict[str, list[str]]:
    """Topic id -> the words a flag on this clause would report."""
    return {t.id: t.find(text) for t in default_topics() if t.find(text)}


@pytest.mark.parametrize(
    ("text", "not_flagged"),
    [
        # Generic opt-out rights are not about training data.
        ("You can opt out of interest-based advertising in your cookie settings.", "training-data"),
        (
            "To opt-out of analytics data collection, use the link in our cookie banner.",
            "training-data",
        ),
        ("You may opt out of marketing emails and of the sale of your data.", "training-data"),
        # "Biometric" as a data category or an office's access control.
        (
            "Sensitive data includes racial or ethnic origin, religious beliefs, health data,"
            " biometric data and genetic data.",
            "facial-recognition",
        ),
        (
            "Our offices are protected by physical security measures such as biometric access"
            " controls.",
            "facial-recognition",
        ),
        # "National security" inside a law-enforcement disclosure clause.
        (
            "We may disclose your information to comply with law enforcement or national security"
            " requests and legal process, such as a court order or subpoena.",
            "military",
        ),
        # "Prosecuted" in a court-venue clause, "prosecution" of fraud by the company.
        (
            "Any claim arising out of these Terms shall be prosecuted exclusively in the state or"
            " federal courts located in San Francisco.",
            "law-enforcement",
        ),
        (
            "We use personal data for detecting, preventing and prosecuting fraud or other illegal"
            " activity.",
            "law-enforcement",
        ),
        # Training of competitors' or distilled models, model weights.
        ("You may not use Output to train a model that competes with our models.", "training-data"),
        (
            "Do not use inputs and outputs to train an AI model (model distillation) without prior"
            " authorization.",
            "training-data",
        ),
        ("You may not extract model weights or use them to train other models.", "training-data"),
        ("You may not use outputs to train models without prior authorization.", "training-data"),
        # A website's analytics is not surveillance of people.
        ("We use log files to track users’ movement around the Website.", "surveillance"),
        ("Geolocation data: the location of your device based on its IP address.", "surveillance"),
    ],
)
def test_a_keyword_in_passing_is_not_the_topic(text: str, not_flagged: str) -> None:
    assert not_flagged not in found(text)


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        (
            "If you do not want us to use your Content to train our models, you can opt out.",
            "training-data",
        ),
        (
            "Even if you opt out, flagged conversations are used for model improvement.",
            "training-data",
        ),
        (
            "We may use your Inputs and Outputs to train our models and improve our Services.",
            "training-data",
        ),
        ("Our training data may incidentally include personal data.", "training-data"),
        ("requests regarding our training datasets are complex", "training-data"),
        (
            "Using biometric systems for identification or assessment of individuals",
            "facial-recognition",
        ),
        (
            "Categorize individuals based on their biometric data to infer their race",
            "facial-recognition",
        ),
        (
            "using personal data or biometrics without legally-required consent",
            "facial-recognition",
        ),
        ("national security or intelligence purposes without our review and approval", "military"),
        ("We will report illegal content to prosecutors.", "law-enforcement"),
        (
            "Assess or predict the risk of an individual committing a criminal offense",
            "law-enforcement",
        ),
        ("underaged access to age-restricted goods", "children"),
        ("Tracking or monitoring people without their consent", "surveillance"),
        ("Target or track a person’s physical location without their consent", "surveillance"),
        ("Covertly tracking someone’s geolocation without their consent", "surveillance"),
        ("Do not use the Services to track individuals without their consent.", "surveillance"),
        ("comply with law enforcement or national security requests", "law-enforcement"),
    ],
)
def test_a_clause_about_the_topic_is_still_flagged(text: str, topic: str) -> None:
    assert topic in found(text)


def test_words_in_link_targets_and_contents_entries_never_count() -> None:
    assert found("See [our policy](https://example.com/military-use-and-children).") == {}
    assert found("[Children's Privacy](#childrens-privacy)") == {}
    assert found("3. [Use by children](#use-by-children) [Surveillance](#surveillance)") == {}
    # The heading it points to, and prose with an anchor link, are still read.
    assert "children" in found("Children's Privacy")
    assert "children" in found("We never collect data from children ([see below](#kids)).")
    old = "- [Other rules](#other)\n"
    new = "- [Other rules](#other)\n- [Use by children](#use-by-children)\n"
    assert flags_for(compare(segment(old), segment(new)), default_topics()) == []


def test_a_modified_clause_is_judged_in_context_too() -> None:
    old = "- We may disclose information to comply with legal process, such as a subpoena.\n"
    new = (
        "- We may disclose information to comply with law enforcement or national security"
        " requests and legal process, such as a subpoena.\n"
    )
    flags = flags_for(compare(segment(old), segment(new)), default_topics())
    assert [(f.topic, f.kind, f.matched) for f in flags] == [
        ("law-enforcement", "modified", ("law enforcement",))
    ]
    old = "- Don't use it for weapons development.\n"
    new = "- Don't use it for weapons development or for national security purposes.\n"
    flags = flags_for(compare(segment(old), segment(new)), default_topics())
    assert [(f.topic, f.matched) for f in flags] == [("military", ("national security",))]


def test_a_user_writes_context_rules_in_tracker_toml() -> None:
    text = """
[[topics]]
id = "healthcare"
label = "health care"
patterns = ["medical advice"]

[[topics.context]]
patterns = ["diagnos*"]
near = ["patient*", "medical"]
window = 5

[[topics.context]]
patterns = ["clinic*"]
not_near = ["address*"]
"""
    topic = parse_config(text, name="tracker.toml", root=Path("/tmp")).topics[-1]
    assert topic.id == "healthcare" and len(topic.context) == 2
    assert topic.find("diagnosis of patients by software") == ["diagnosis"]
    assert topic.find("a diagnosis of network faults") == []
    assert topic.find("our clinic address is 1 Main St") == []
    assert topic.find("clinical decisions") == ["clinical"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ('patterns = ["x"]', "context rule #1: give 'near' or 'not_near'"),
        ('patterns = []\nnear = ["y"]', "context rule #1: key 'patterns' must be a non-empty"),
        (
            'patterns = ["x"]\nnear = ["y"]\nwindow = 0',
            "context rule #1: key 'window' must be a whole number",
        ),
        ('patterns = ["x"]\nnear = ["re:(bad"]', "context rule #1: key 'near': invalid pattern"),
        ('patterns = ["x"]\nnearby = ["y"]', "context rule #1: unknown key 'nearby'"),
    ],
)
def test_context_rule_errors(context: str, message: str) -> None:
    text = f'[[topics]]\nid = "t"\nlabel = "T"\npatterns = ["p"]\n[[topics.context]]\n{context}\n'
    with pytest.raises(ConfigError, match="topic 't': " + re.escape(message)):
        parse_config(text, name="tracker.toml", root=Path("/tmp"))


@pytest.mark.parametrize(
    ("old", "new", "topic"),
    [
        ("We do not train our models on your content.", "We train our models on your content.",
         "training-data"),
        ("We do not use facial recognition on your photos.",
         "We use facial recognition on your photos.", "facial-recognition"),
        ("You may use it for military research.", "You may not use it for military research.",
         "military"),
        ("Police may never receive your data.", "Police may receive your data.",
         "law-enforcement"),
    ],
)  # fmt: skip
def test_a_negation_or_modal_edited_before_a_topic_is_flagged(
    old: str, new: str, topic: str
) -> None:
    """The topic's words read the same in both versions; the clause says the opposite."""
    changes = compare(segment(f"# T\n\n{old}\n"), segment(f"# T\n\n{new}\n"))
    flags = flags_for(changes, default_topics())
    assert topic in {f.topic for f in flags}, flags


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("We train our models on your content, which we keep.",
         "We train our models on your content, which we store."),
        ("Police may request data. We reply in days.",
         "Police may request data. We must reply in days."),  # another sentence
        ("Minors need consent. Use is free.", "Minors need consent. Use may be free."),
    ],
)  # fmt: skip
def test_an_edit_that_does_not_govern_the_topic_raises_no_flag(old: str, new: str) -> None:
    changes = compare(segment(f"# T\n\n{old}\n"), segment(f"# T\n\n{new}\n"))
    flags = flags_for(changes, default_topics())
    assert flags == [], flags


@pytest.mark.parametrize(
    ("topic", "text"),
    [
        ("surveillance", "Do not use the Services to covertly geolocate a person's device."),
        ("surveillance", "You may not use the Services to track people across websites."),
    ],
)
def test_bans_on_tracking_people_are_about_surveillance(topic: str, text: str) -> None:
    assert TOPICS[topic].find(text)


# --- bounds: context windows found once, clauses read up to SCAN_CHARS ---------------------


@pytest.mark.parametrize("seed", range(5))
def test_context_windows_read_the_words_a_split_would(seed: int) -> None:
    """The word offsets found once per text give each match the words that splitting
    the text around it gave (a word cut by the match counts, cut)."""
    import random

    from tracker.analysis.topics import _Spans

    rng = random.Random(seed)
    text = "".join(rng.choice(["ab", "c", " ", "  ", "\n", "dé", "-", "x"]) for _ in range(300))
    spans = _Spans(text)
    for at in range(len(text) + 1):
        for window in (1, 3, 12):
            assert spans.before(at, window) == text[:at].split()[-window:]
            assert spans.after(at, window) == text[at:].split()[:window]


@pytest.mark.timeout(60)
def test_context_rules_on_a_huge_clause_finish_promptly() -> None:
    """Each match's context once split all the text before it: quadratic, 115 s for the
    issue's 5 MB line. Now word offsets are found once, and a clause is read up to
    `SCAN_CHARS` characters (2 MB here)."""
    from tracker.analysis.topics import SCAN_CHARS, Context

    topic = Topic("t", "T", ("never-matches-xyz",), (Context(("opt out",), ("training",)),))
    text = "you can opt out of training " * (2_000_000 // 28)
    assert topic.matches(text) == ["opt out"]
    late = "plain words here " * (SCAN_CHARS // 17 + 1) + "you can opt out of training"
    assert topic.matches(late) == []  # past the bound: not read
    assert topic.matches(late[-40:]) == ["opt out"]


def test_topics_read_a_clause_up_to_the_bound_and_flag_what_is_there() -> None:
    from tracker.analysis.topics import SCAN_CHARS

    filler = "plain words here " * (SCAN_CHARS // 17 - 100)
    early = filler + "We build facial recognition tools."
    late = filler * 2 + "We build facial recognition tools."
    assert TOPICS["facial-recognition"].find(early) == ["facial recognition"]
    assert TOPICS["facial-recognition"].find(late) == []
    changes = compare(segment("# T\n\nIntro.\n"), segment(f"# T\n\nIntro.\n\n{early}\n"))
    assert [f.topic for f in flags_for(changes, default_topics())] == ["facial-recognition"]
