"""Look-alike usernames: the UTS #39 skeleton key, the User column that stores it, its migration.

Look-alike characters are written as escapes, each named: the point is that they cannot be told
apart from the letters they imitate.
"""

from __future__ import annotations

import importlib
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor

from accounts import confusables
from accounts.models import User
from accounts.usernames import (
    generate,
    lookalike_skeletons,
    skeleton,
    username_key,
    username_skeleton,
)
from tests.conftest import PASSWORD

SKELETON_MIGRATION = importlib.import_module("accounts.migrations.0003_user_username_skeleton")


def looks_like(candidate: str, taken: str) -> bool:
    """Whether `candidate` is refused beside an existing `taken` (what the checks compute)."""
    return username_skeleton(taken) in lookalike_skeletons(candidate)


# --- the skeleton and the key -----------------------------------------------------------------


def test_skeleton_is_the_uts39_skeleton():
    # UTS #39's own example, section 4: mathematical letters and a Vietnamese y are "paypal".
    assert skeleton("\U0001d52d\U0001d4b6\u1eff\U0001d561\U0001d552\u2113") == "paypal"
    assert skeleton("b\u043eb") == "bob"  # CYRILLIC SMALL LETTER O
    assert skeleton("m") == "rn"  # the table maps to prototypes, both ways alike
    assert skeleton("rn") == "rn"
    assert skeleton("I") == skeleton("l") == skeleton("1") == "l"


def test_skeleton_drops_default_ignorable_code_points():
    for invisible in ("\u3164", "\uffa0", "\u115f", "\u200b", "\u00ad", "\ufe0f", "\U000e0041"):
        assert skeleton(f"bo{invisible}b") == "bob", f"U+{ord(invisible):04X}"


@pytest.mark.parametrize(
    ("candidate", "taken"),
    [
        ("b\u043eb", "bob"),  # CYRILLIC SMALL LETTER O
        ("b\u03bfb", "bob"),  # GREEK SMALL LETTER OMICRON
        ("\u0412\u041e\u0412", "bob"),  # CYRILLIC CAPITAL VE, O, VE: "BOB"
        ("\uff42\uff4f\uff42", "bob"),  # FULLWIDTH LATIN SMALL LETTERS
        ("\U0001d41b\U0001d428\U0001d41b", "bob"),  # MATHEMATICAL BOLD SMALL LETTERS
        ("BoB", "bob"),
        ("bob", "BOB"),
        ("bob\u3164", "bob"),  # HANGUL FILLER, invisible
        ("b0b", "bob"),  # DIGIT ZERO: UTS #39 maps it to O
        ("a1ice", "alice"),  # DIGIT ONE: UTS #39 maps it to l
        ("AIice", "alice"),  # capital I for the l
        ("Ian", "lan"),
        ("lan", "Ian"),
        ("\u0406van", "ivan"),  # CYRILLIC CAPITAL BYELORUSSIAN-UKRAINIAN I
        ("\u13dfat", "cat"),  # CHEROKEE LETTER TLI, a C
        ("\ua4daat", "cat"),  # LISU LETTER CHA, a C
        ("\u039dancy", "nancy"),  # GREEK CAPITAL LETTER NU
        ("\u0392ob", "bob"),  # GREEK CAPITAL LETTER BETA
        ("rnary", "mary"),
        ("Stra\u00dfe", "strasse"),  # LATIN SMALL LETTER SHARP S casefolds to ss
        ("e\u0301mile", "\u00e9mile"),  # a combining acute, and the precomposed letter
    ],
)
def test_look_alikes_are_refused(candidate, taken):
    assert looks_like(candidate, taken)


@pytest.mark.parametrize(
    ("candidate", "taken"),
    [
        ("bobby", "bob"),
        ("rob", "bob"),
        ("bo", "bob"),
        ("b.o.b", "bob"),
        ("bob_", "bob"),
        ("alicia", "alice"),
        ("ian", "lan"),  # lowercase i and l are told apart
        ("lan", "ian"),
        ("\u0431\u043e\u0440\u0438\u0441", "bob"),  # a Cyrillic name of its own
        ("\u00e9mile", "emile"),  # an accent is a difference
    ],
)
def test_names_that_only_resemble_are_accepted(candidate, taken):
    assert not looks_like(candidate, taken)


def test_the_second_key_is_one_sided():
    # "\u0406van" (Cyrillic capital I) reads as "Ivan": refused beside "ivan". Once it exists,
    # "ivan" is not refused beside it; the docstring of accounts.usernames says why.
    assert looks_like("\u0406van", "ivan")
    assert not looks_like("ivan", "\u0406van")
    assert username_key("\u0406van") == username_key("lvan")


def test_username_skeleton_is_a_fixed_size_digest_of_the_key():
    assert username_skeleton("bob") == username_skeleton("B\u043eB")
    assert re.fullmatch(r"[0-9a-f]{64}", username_skeleton("bob"))
    # U+FDFA is one letter and eighteen after NFKC; the digest stays 64 characters.
    assert len(username_key("\ufdfa" * 150)) >= 150 * 18
    assert len(username_skeleton("\ufdfa" * 150)) == 64


def test_the_table_is_unicode_15s_confusables():
    assert confusables.UNICODE_VERSION == "15.0.0"
    prototypes = confusables.PROTOTYPES.split()
    assert len(prototypes) == 6311  # the data lines of confusables.txt 15.0.0
    assert "043E,006F" in prototypes  # CYRILLIC SMALL LETTER O is an o
    assert "006D,0072,006E" in prototypes  # m is r n


def test_generate_writes_what_the_skeleton_reads():
    confusables_txt = (
        "# Version: 99.0.0\n"
        "0430 ;\t0061 ;\tMA\t# ( \u0430 \u2192 a ) CYRILLIC SMALL LETTER A \u2192 LATIN\n"
        "\n"
        "006D ;\t0072 006E ;\tMA\t# ( m \u2192 rn )\n"
    )
    properties_txt = (
        "00AD          ; Default_Ignorable_Code_Point # Cf       SOFT HYPHEN\n"
        "115F..1160    ; Default_Ignorable_Code_Point # Lo   [2] HANGUL FILLERS\n"
        "0041..005A    ; Alphabetic # L&  [26] LATIN CAPITAL LETTER A..Z\n"
    )

    module: dict = {}
    exec(generate(confusables_txt, properties_txt), module)  # noqa: S102 (our own output)

    assert module["UNICODE_VERSION"] == "99.0.0"
    assert module["PROTOTYPES"].split() == ["006D,0072,006E", "0430,0061"]
    assert module["DEFAULT_IGNORABLE"].split() == ["00AD", "115F..1160"]


# --- User.username_skeleton -------------------------------------------------------------------


@pytest.mark.django_db
def test_every_save_sets_the_skeleton(make_user):
    bob = make_user("bob")
    assert bob.username_skeleton == username_skeleton("bob")

    bob.username = "robert"
    bob.save()
    assert User.objects.get(pk=bob.pk).username_skeleton == username_skeleton("robert")

    bob.username = "bobby"
    bob.save(update_fields=["username"])
    assert User.objects.get(pk=bob.pk).username_skeleton == username_skeleton("bobby")


@pytest.mark.django_db
def test_the_database_refuses_a_look_alike_that_skipped_validation(make_user):
    make_user("bob")

    with pytest.raises(IntegrityError):
        User(username="b\u043eb", email="other@example.com").save()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("b\u043eb", "A user with a similar username already exists."),
        ("BOB", "A user with that username already exists."),
    ],
)
def test_full_clean_refuses_a_look_alike_on_the_username_field(make_user, username, message):
    make_user("bob")
    user = User(username=username, email="other@example.com", password="!")

    with pytest.raises(ValidationError) as caught:
        user.full_clean()

    assert caught.value.message_dict == {"username": [message]}
    assert [error.code for error in caught.value.error_dict["username"]] == ["unique"]


@pytest.mark.django_db
def test_full_clean_accepts_a_user_beside_its_own_skeleton(make_user):
    bob = make_user("bob")
    make_user("carol")

    bob.first_name = "Bob"
    bob.full_clean()  # its own row is not a look-alike of itself
    User(username="bobby", email="bobby@example.com", password="!").full_clean()


# --- migration 0003 ---------------------------------------------------------------------------


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture
def before_skeletons(transactional_db):
    """The database as it was before migration 0003; migrated back to the latest afterwards."""
    before = list(SKELETON_MIGRATION.Migration.dependencies)
    executor = _migrate(before)
    yield executor.loader.project_state(before).apps.get_model("accounts", "User")
    _migrate(_latest())


def test_migration_fills_the_skeleton_of_existing_users(before_skeletons):
    for name in ("bob", "Carol", "\uff44\uff41\uff56\uff45"):  # FULLWIDTH "dave"
        before_skeletons.objects.create(username=name, email=f"{name}@example.com", password="!")

    _migrate(_latest())

    stored = dict(User.objects.values_list("username", "username_skeleton"))
    assert stored == {name: username_skeleton(name) for name in stored}
    assert len(stored) == 3


def test_migration_stops_and_names_existing_look_alikes(before_skeletons):
    for name in ("bob", "carol", "b\u043eb"):
        before_skeletons.objects.create(username=name, email=f"{name}@example.com", password="!")

    with pytest.raises(RuntimeError, match=r"'bob' and id \d+ 'b\\u043eb'"):
        _migrate(_latest())

    # Rolled back whole: nothing half-done, and it goes through once the pair is resolved.
    before_skeletons.objects.filter(username="b\u043eb").update(username="robert")
    _migrate(_latest())
    assert User.objects.get(username="robert").username_skeleton == username_skeleton("robert")


@pytest.mark.django_db
@pytest.mark.parametrize("candidate", ["Alice", "\u0430lice"], ids=["case", "cyrillic-a"])
def test_createsuperuser_refuses_a_look_alike_with_an_error_not_a_traceback(candidate):
    User.objects.create_user("alice", "alice@example.com", PASSWORD)

    with pytest.raises(CommandError, match="username"):
        call_command(
            "createsuperuser",
            interactive=False,
            username=candidate,
            email="admin@example.com",
            verbosity=0,
        )

    assert User.objects.filter(is_superuser=True).count() == 0


@pytest.mark.django_db
def test_createsuperuser_creates_an_unrelated_name():
    User.objects.create_user("alice", "alice@example.com", PASSWORD)

    call_command(
        "createsuperuser", interactive=False, username="root", email="r@example.com", verbosity=0
    )

    assert User.objects.get(username="root").is_superuser
