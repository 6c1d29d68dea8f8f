"""What a history's words are (transcripts.nouns): read from the positions the history itself uses them in."""

from transcripts.nouns import ACTION, NAME, NOUN, NUMBER, WORD, WordRoles, name_phrase

TEXTS = [
    "My favorite recipe is Chicken Pot Pie.",
    "I heard about a great camping setup for the kids.",
    "Joanna: Glad you found a way to have fun!",
    "I found the recipe online, and I really loved the event.",
    "Noted — I'll leave British spellings as they are.",
    "We deploy with `fly deploy` now; the app runs on pydantic.",
    "Take courage and keep writing.",
    "It was a great event, honestly.",
]


def test_words_are_told_apart_by_where_the_history_uses_them():
    roles = WordRoles.read(TEXTS)
    assert roles.rank("Chicken") == NAME and roles.rank("British") == NAME  # capitalised inside sentences
    assert roles.rank("recipe") == NOUN and roles.rank("event") == NOUN  # "my favorite recipe", "the event"
    assert roles.rank("heard") == ACTION and roles.rank("found") == ACTION  # after "I" / "you"
    assert roles.rank("Noted") == ACTION and roles.rank("Take") == ACTION  # only ever a sentence's first word
    assert roles.rank("honestly") == ACTION  # an adverb
    assert roles.rank("writing") == ACTION  # "keep writing": an -ing form the history never uses as a noun
    assert roles.rank("camping") == NOUN  # "a great camping setup": an -ing word used as a noun
    assert roles.rank("anything") == ACTION and roles.rank("another") == ACTION  # function words
    assert roles.rank("pydantic") == WORD  # nothing says what it is: not pushed back
    assert roles.rank("fly_deploy") == NAME and roles.rank("CI") == NAME  # code and acronyms
    assert roles.rank("1.5s") == NUMBER


def test_a_name_is_asked_with_the_capitalised_words_around_it():
    assert name_phrase("Pie", TEXTS[0]) == "Chicken Pot Pie"
    assert name_phrase("Chicken", TEXTS[0]) == "Chicken Pot Pie"  # "My" opens the sentence, not the name
    assert name_phrase("British", TEXTS[4]) == "British"
    assert name_phrase("Pi", TEXTS[0]) == "Pi"  # not inside another word
