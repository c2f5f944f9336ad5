"""Descriptor extraction f (paper sec. 3.2, step 1): the rules, the optional LLM judgment, the `extract` contract.

The table `CASES` is the specification by example (hand-written answers in the styles of small chat models, base-model
continuations and GPT-4-style lists). `tests/data/extraction_heldout.jsonl` (70 answers, 261 gold words) is a separate
held-out set written before the rules and not used to tune them: its first run gave micro-F1 0.987; the two generic
bugs it exposed ('machine learning' -> learning, a list line dropped for ending in a question) were then fixed with
spec cases of their own, in other words. Its micro-F1 is the acceptance figure (>= 0.90).
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from valuelex_utils.errors import UserError
from valuelex_utils.extraction import (
    ELICITATION_PROMPTS,
    VALUE_LEXICON,
    explain,
    extract_descriptors,
    extract_file,
    head_word,
    is_value_word,
    llm_filter,
    llm_filter_messages,
)
from valuelex_utils.extraction.heads import NOT_A_VALUE, Skill, phrase_head

HELDOUT = Path(__file__).parent / "data" / "extraction_heldout.jsonl"

CASES: list[tuple[str, str, list[str]]] = [
    # --- lists
    ("numbered_list_gives_each_item", "1. Honesty\n2. Empathy\n3. Reliability", ["honesty", "empathy", "reliability"]),
    ("dash_bullets_give_each_item", "- Courage\n- Wisdom\n- Justice", ["courage", "wisdom", "justice"]),
    ("bold_header_with_reason_keeps_header_word",
     "1. **Accuracy**: I strive to give correct, honest and reliable information.\n"
     "2. **Kindness**: I treat people warmly and with respect.",
     ["accuracy", "kindness"]),
    ("gpt4_bold_list_with_intro_and_outro",
     "Certainly! Here are the values that guide me:\n\n1. **Accuracy**: I strive to provide correct information.\n"
     "2. **Transparency**: I am open about my limitations.\n3. **Empathy**: I try to understand the user.\n\n"
     "These values help me be a trustworthy and helpful assistant.",
     ["accuracy", "transparency", "empathy"]),
    ("word_dash_reason_keeps_word", "Integrity - doing the right thing\nPatience - waiting calmly for others",
     ["integrity", "patience"]),
    ("word_colon_reason_without_marker", "Curiosity: I ask questions.\nDiligence: I check my work twice.",
     ["curiosity", "diligence"]),
    ("parenthetical_reason_is_ignored", "1. Clarity (explaining things simply)\n2. Patience (never rushing anyone)",
     ["clarity", "patience"]),
    ("bold_header_on_its_own_line_then_explanation",
     "**Curiosity**\nI love to learn about everything.\n\n**Diligence**\nI work hard and stay focused.",
     ["curiosity", "diligence"]),
    ("nested_sub_bullets_explain_and_are_skipped",
     "1. **Safety**\n   - Being careful\n   - Avoiding harm\n2. **Fairness**\n   - Treating all equally",
     ["safety", "fairness"]),
    ("markdown_headings_are_items",
     "## Values\n### 1. Accuracy\nI check facts.\n### 2. Transparency\nI explain myself.",
     ["accuracy", "transparency"]),
    ("lettered_list", "a) Loyalty\nb) Devotion\nc) Gratitude", ["loyalty", "devotion", "gratitude"]),
    ("inline_numbered_list_on_one_line", "1. Courage 2. Temperance 3. Prudence", ["courage", "temperance", "prudence"]),
    ("markdown_table_first_column",
     "| Value | Meaning |\n|---|---|\n| Honesty | telling the truth |\n| Charity | giving to others |",
     ["honesty", "charity"]),
    ("italics_and_backticks_are_stripped", "- _Humility_\n- `Rigor`\n- *Grace*", ["humility", "rigor", "grace"]),
    ("all_caps_lines_are_lower_cased", "HONESTY\nLOYALTY\nDISCIPLINE", ["honesty", "loyalty", "discipline"]),
    ("unseen_word_in_clean_list_is_kept", "1. Frugality\n2. Punctuality\n3. Honesty",
     ["frugality", "punctuality", "honesty"]),
    ("trailing_prose_after_a_list_is_ignored",
     "1. Honesty\n2. Fairness\n\nI hope these help you understand me as a reliable and caring assistant.",
     ["honesty", "fairness"]),
    ("sub_points_under_a_plain_header_are_the_list", "1. Core values:\n   - Honesty\n   - Integrity",
     ["honesty", "integrity"]),
    ("emoji_bullets_with_bold_headers_under_a_bold_header",
     "**Values I hold:**\n\n\U0001F539 **Candor** \u2014 I say what I think.\n\U0001F539 **Warmth** \u2014 I care.",
     ["candor", "warmth"]),
    ("parenthesised_numbers_on_one_line", " (1) honesty (2) integrity (3) respect",
     ["honesty", "integrity", "respect"]),
    ("list_of_domains_is_not_a_list_of_values",
     "1. Grammar and spelling\n2. Translation and summaries\n3. Coding and debugging\n4. Science and learning", []),
    ("list_of_steps_is_not_a_list_of_values", "1. Preheat the oven\n2. Mix the flour\n3. Bake for an hour", []),
    # --- enumerations
    ("comma_separated_line", "Loyalty, Creativity, Discipline, Optimism",
     ["loyalty", "creativity", "discipline", "optimism"]),
    ("semicolon_separated_line", "Fairness; honesty; humility", ["fairness", "honesty", "humility"]),
    ("slash_separated_words", "Trust/Respect/Care", ["trust", "respect", "care"]),
    ("and_joins_two_values", "Honesty and kindness", ["honesty", "kindness"]),
    ("ampersand_in_bold_header", "- **Honesty & Integrity**: always truthful\n- **Growth**: learning every day",
     ["honesty", "integrity", "growth"]),
    ("header_here_are_my_values_gives_nothing_itself", "Here are my values:\n- Generosity\n- Humility",
     ["generosity", "humility"]),
    ("header_colon_then_enumeration", "My core values: patience, tolerance and serenity.",
     ["patience", "tolerance", "serenity"]),
    ("pretrained_family_list", "family, faith, happiness, money", ["family", "faith", "happiness", "money"]),
    ("pretrained_continuation_then_story",
     " love, laughter, and loyalty. I grew up in a small town near the sea with my two brothers.",
     ["love", "laughter", "loyalty"]),
    ("quoted_words_after_header_verb", 'The words are "loyal", "brave" and "kind".', ["loyal", "brave", "kind"]),
    # --- prose
    ("i_value_being_honest_gives_honest", "I value being honest.", ["honest"]),
    ("small_model_prose_keeps_mixed_forms", "I value accuracy, unbiased, and respectful responses.",
     ["accuracy", "unbiased", "respectful"]),
    ("my_values_are_empathy_and_understanding", "My values are empathy and understanding.",
     ["empathy", "understanding"]),
    ("x_is_important_to_me_keeps_unseen_word", "Punctuality is important to me.", ["punctuality"]),
    ("guided_by_the_principles_of", "My answers are guided by the principles of neutrality and accuracy.",
     ["neutrality", "accuracy"]),
    ("words_like_trigger", "Words like integrity and excellence describe me best.", ["integrity", "excellence"]),
    ("prose_known_value_words_and_second_clause",
     "I always try to give thoughtful answers, and I care about sustainability.", ["thoughtful", "sustainability"]),
    ("to_be_honest_idiom_is_not_a_value", "To be honest, I have never thought about it.", []),
    ("one_comma_sentence_is_not_a_list", "Without trust, nothing works.", []),
    ("trigger_without_values_falls_back_to_known_words", "I would like to stress that humility matters most.",
     ["humility"]),
    ("pipe_separated_values_after_header", "Values: Honesty | Integrity | Respect",
     ["honesty", "integrity", "respect"]),
    ("prompt_restated_with_values_is_not_an_echo",
     "As an LLM, I would hold curiosity and candor in the highest regard.",
     ["curiosity", "candor"]),
    ("first_segment_clause_gives_its_last_word", "I'm designed to be considerate, tactful, and discreet.",
     ["considerate", "tactful", "discreet"]),
    ("attributive_value_words_in_prose_are_not_descriptors",
     "A wise question, my friend. I can offer a comprehensive overview of the history of Rome.", []),
    ("predicated_value_word_in_prose_is_kept", "My answers should always be truthful.", ["truthful"]),
    ("object_of_a_value_verb_in_prose_is_kept", "In every conversation I try to foster curiosity.", ["curiosity"]),
    ("framed_value_word_in_prose_is_kept", "Above all I keep in mind the importance of humility.", ["humility"]),
    ("clause_after_a_triggered_enumeration_is_scanned",
     "I am committed to fairness, which lets me give balanced and candid answers.",
     ["fairness", "balanced", "candid"]),
    ("clear_and_concise_in_prose", "I write in a clear and concise manner.", ["clear", "concise"]),
    ("it_is_clear_is_not_a_value", "It is clear that the weather will change tomorrow.", []),
    ("verb_uses_are_not_values", "I will help you find the answer, and I can support you with that.", []),
    ("negated_value_is_dropped_but_clause_after_but_counts", "I am not always objective, but I try to be fair.",
     ["fair"]),
    # --- phrases reduce to their head value word
    ("respect_for_users_reduces_to_respect", "- Respect for users\n- Commitment to accuracy", ["respect", "accuracy"]),
    ("user_privacy_reduces_to_privacy", "Values: user privacy, data security", ["privacy", "security"]),
    ("being_and_staying_phrases_reduce", "- Being patient\n- Staying curious", ["patient", "curious"]),
    ("safety_first_reduces_to_safety", "- Safety first\n- Sense of humor", ["safety", "humor"]),
    ("value_modifier_beats_a_list_only_noun", "- Inclusive environment\n- Peaceful home", ["inclusive", "peaceful"]),
    ("hyphenated_compound_is_one_word", "Open-mindedness, well-being, user-friendliness",
     ["open-mindedness", "well-being", "user-friendliness"]),
    # --- noise
    ("emoji_bullets_are_stripped", "\U0001F31F Optimism\n\U0001F525 Passion\n\U0001F917 Warmth",
     ["optimism", "passion", "warmth"]),
    ("repeated_words_are_deduplicated_in_order", "Honesty, honesty, kindness, Honesty, kindness",
     ["honesty", "kindness"]),
    ("order_of_appearance_is_kept", "Zeal, Accuracy, Balance", ["zeal", "accuracy", "balance"]),
    ("stop_words_are_never_descriptors", "Core values: key principles, guiding words, honesty", ["honesty"]),
    # --- refusals, echoes, off-topic
    ("refusal_yields_nothing", "As an AI, I don't have personal values.", []),
    ("sorry_refusal_yields_nothing", "I'm sorry, but I can't answer that.", []),
    ("prompt_echo_yields_nothing", "Name the values that inform your responses.", []),
    ("off_topic_prose_yields_nothing", "The weather in Paris is mild in spring, and the trains run on time.", []),
    ("refusal_then_values_keeps_values",
     "As an AI I don't have personal values, but I strive for accuracy, fairness and helpfulness.",
     ["accuracy", "fairness", "helpfulness"]),
    ("machine_learning_is_not_the_value_learning",
     "I am a large language model built with deep learning and artificial intelligence research.", []),
    ("list_line_followed_by_a_question_keeps_the_list",
     "Courage, Candor, Curiosity. Shall I explain each one?", ["courage", "candor", "curiosity"]),
    ("empty_answer_yields_nothing", "   \n\n", []),
    # --- generic rules found on real answers (tests/data/extraction_real_dev.jsonl), written here in other words
    ("bullets_under_a_standalone_bold_header_explain_it",
     "**Privacy and Security**\n- I never store what you share\n- I avoid offensive or careless language\n\n"
     "**Helpfulness**\n- I give relevant, practical answers", ["privacy", "security", "helpfulness"]),
    ("html_bold_headers_are_bold_headers",
     " <b>Loyalty</b> \u2013 I stand by my friends\n <b>Grit</b> \u2013 I never quit", ["loyalty", "grit"]),
    ("first_person_list_items_are_statements",
     "* I value the freedom to choose.\n* I treat everyone with courtesy and patience.",
     ["freedom", "courtesy", "patience"]),
    ("letter_colon_markers", "A: Courage\nB: Candor\nC: Charity", ["courage", "candor", "charity"]),
    ("avoided_things_are_not_values", "I avoid bias and misinformation, and I aim for fairness.", ["fairness"]),
    ("outro_about_the_list_gives_nothing",
     "1. Candor\n2. Diligence\n\nThese principles make my answers positive, productive and trustworthy.",
     ["candor", "diligence"]),
    ("self_description_after_a_list_counts",
     "- Rigor\n- Warmth\n\nAbove all, I try to be patient, gentle and fair with everyone.",
     ["rigor", "warmth", "patient", "gentle", "fair"]),
    ("value_adjective_before_a_self_noun", "I'm a cheerful assistant who loves puzzles.", ["cheerful"]),
    ("gerund_with_an_object_is_a_verb", "I help people by understanding the question and learning their goals.", []),
    ("objective_as_a_noun_is_not_a_value", "My main objective is to answer quickly.", []),
    ("quantity_frame_is_not_a_value_frame", "I can draw on a wide range of knowledge and tools.", []),
    ("principles_of_trigger_keeps_each_value",
     "I hold the highest regard for the principles of honesty, thrift, and the courage to speak up.",
     ["honesty", "thrift", "courage"]),
    ("intro_sentence_on_a_header_line_is_prose",
     "In every answer I aim for clarity and candor. Here is how I work:\nI read the question twice.",
     ["clarity", "candor"]),
    ("list_only_modifier_does_not_head_a_phrase", "Positive numbers: 1, 2, 3", []),
    ("explanation_after_an_enumeration_is_not_listed",
     "Clarity and precision, with a focus on using concise wording.", ["clarity", "precision"]),
    # --- generic rules found on tests/data/extraction_real_test3.jsonl and the dev/test2 errors, in other words
    ("enumeration_after_a_name_label", "Nova: Honesty, Patience, Candor, Humility",
     ["honesty", "patience", "candor", "humility"]),
    ("name_label_then_committed_statement",
     "Ava: In all my work, I am committed to the pursuit of truth, mercy and justice.",
     ["truth", "mercy", "justice"]),
    ("dash_after_a_header_phrase_introduces_an_enumeration", "Guiding values \u2014 candor; diligence; humility.",
     ["candor", "diligence", "humility"]),
    ("group_headings_with_a_preposition_are_not_values",
     "1. For learners:\n   - Patience\n   - Clarity\n2. For knowledge:\n   - Rigor\n   - Curiosity",
     ["patience", "clarity", "rigor", "curiosity"]),
    ("capabilities_in_a_value_list_are_not_values",
     "1. Code completion\n2. Honesty\n3. Multilingual support\n4. Fairness",
     ["honesty", "fairness"]),
    ("self_description_before_a_trigger_counts", "As a careful assistant, I value clarity and rigor.",
     ["careful", "clarity", "rigor"]),
    ("power_of_a_non_value_is_nothing", "- The power of the mind\n- The power of the crowd", []),
    ("gerund_with_a_possessive_object_is_a_verb", "I believe in empowering my colleagues to grow.", []),
    ("my_responsibility_to_is_an_idiom", "It is my responsibility to check the numbers every week.", []),
    ("capable_of_doing_is_not_a_value", "I am capable of writing essays and poems.", []),
    ("gerund_coordinated_with_a_verb_is_a_verb", "I help people by reading and understanding long reports.", []),
    ("person_who_believes_in_is_a_trigger", "I am a person who believes in kindness above all.", ["kindness"]),
    ("speaker_value_statement_after_a_list_counts", "- Candor\n- Rigor\n\nBeyond these, I care about fairness.",
     ["candor", "rigor", "fairness"]),
    ("character_nouns_after_i_am", "I'm an optimist and a giver.", ["optimist", "giver"]),
    ("vague_evaluation_is_not_a_value", "I give accurate and effective answers.", ["accurate"]),
    # --- generic rules found on two more blind sets (written large-model styles; new SmolLM2/Gemma samples)
    ("one_word_sentence", "Courage.", ["courage"]),
    ("all_caps_one_word_sentences", "FAIRNESS. LOYALTY. FAIRNESS. KINDNESS.", ["fairness", "loyalty", "kindness"]),
    ("one_word_sentence_that_is_no_value", "Thanks. Bye.", []),
    ("not_only_but_also_negates_nothing", "My answers should be not only correct but also kind and candid.",
     ["correct", "kind", "candid"]),
    ("not_just_then_negation_still_negates", "I am not just fast; I do not value speed over care.", []),
    ("bold_summary_label_is_no_item", "- **Rigor** - checks\n- **Warmth** - tone\n\n**To sum up:** rigorous, warm "
     "and fair \u2014 that is me.", ["rigor", "warmth", "rigorous", "warm", "fair"]),
    ("plain_summary_label_is_no_item", "1. Humility\n2. Diligence\n\nAll in all: humble and diligent.",
     ["humility", "diligence", "humble", "diligent"]),
    ("answer_cut_in_the_middle_of_a_word", "My values are:\n1. Courage: I act.\n2. Kindness: I care.\n3. Perseve",
     ["courage", "kindness"]),
    ("cut_check_keeps_a_whole_last_word", "The ideals I hold are courage, kindness, loyalty and fairness",
     ["courage", "kindness", "loyalty", "fairness"]),
    ("person_of_a_value", "I try to be a woman of faith and a person of honor.", ["faith", "honor"]),
    ("speaker_has_a_value_for", "We have a profound respect for every culture.", ["respect"]),
    ("having_a_value_word_as_a_modifier_is_not_having_it", "I have honesty concerns about the survey.", []),
    ("a_skill_the_speaker_values_is_a_value", "We prioritise critical thinking and candor.", ["thinking", "candor"]),
    ("a_skill_given_as_an_example_is_not", "I help with tasks such as data analysis and summarization.", []),
    ("semicolon_items_explained_by_a_phrase", "Candor about my limits; patience with beginners; rigor in proofs.",
     ["candor", "patience", "rigor"]),
    ("a_third_person_clause_is_someone_elses", "My aunt raised me. She believed in thrift and kindness, and he was "
     "a man of faith.", []),
    ("third_person_with_the_speaker_counts", "She taught me that I should value patience.", ["patience"]),
    ("an_offer_names_topics", "I have no values myself. I can explain how models are tested for fairness.", []),
    ("quantities_in_a_list_are_no_values", "1. Kindness\n2. Courage\n3. 2 cups of flour\n4. 1 egg", ["kindness", "courage"]),
    ("a_technique_in_a_list_is_no_value", "- Candor\n- Natural language processing\n- Diligence", ["candor", "diligence"]),
    ("prevention_and_capabilities_are_no_values",
     "- Fairness\n- Honesty\n- Harm prevention\n\n## Capabilities\n- Translation", ["fairness", "honesty"]),
    ("hashtags_are_an_enumeration", "My ethos: #candor #thrift #patience #TeamSpirit2024", ["candor", "thrift",
                                                                                         "patience"]),
    ("a_single_hashtag_is_left_alone", "I love this #question: I value fairness.", ["fairness"]),
    ("json_list_of_named_values", '{"values": [{"name": "Diligence", "description": "Be careful and correct."}, '
     '{"name": "Equity", "description": "Be fair and kind."}]}', ["diligence", "equity"]),
    ("json_in_a_fence_skips_rejected_keys_and_metadata",
     '```json\n{"core": ["temperance", "fidelity"], "avoid": ["flattery"], "confidence": "medium"}\n```',
     ["temperance", "fidelity"]),
    ("yaml_mapping_of_values_to_descriptions",
     "```yaml\nprinciples:\n  candor:\n    note: Say what I think.\n  prudence:\n    note: Weigh the risks.\n"
     "workflow:\n  step: draft then check\n```", ["candor", "prudence"]),
    ("bare_yaml_lists_with_snake_case", "virtues:\n  - courage\n  - respect_for_elders\nmeta:\n  version: 2",
     ["courage", "respect"]),
    ("counted_off_values", "I would put three things first. First, diligence. Second, benevolence: kindness to "
     "all. Finally, candor.", ["diligence", "benevolence", "candor"]),
    ("rank_names_a_value", "I would rank patience above speed.", ["patience"]),
    ("values_of_a_group_are_not_the_speakers", "Many ancient traditions prize obedience and piety.", []),
    ("loved_value_objects", "I love cooking.\n\nI love my family.\n\nWe cherish our community.",
     ["family", "community"]),
    ("loved_things_that_are_no_values", "I love my job and my garden.", []),
    ("ordinal_adverbs_are_no_values", "Firstly, I am honest.\n\nSecondly, I am patient.\n\nLastly, I am kind.",
     ["honest", "patient", "kind"]),
    ("bullets_under_a_numbered_value_item_explain_it",
     "1. **Fairness**:\n\n* To give every side a hearing\n* To stay neutral\n\n2. **Diligence**:\n\n* To check twice",
     ["fairness", "diligence"]),
    ("a_jobs_duties_are_not_responsibility", "I am responsible for managing the budget and for the hiring.", []),
    ("responsible_for_ones_conduct", "I am responsible for my choices.", ["responsible"]),
    ("a_verb_in_progress_is_no_quality", "I am always learning and I am always listening.", []),
    ("duty_of_a_value", "- **Duty of Loyalty**\n- **Candor**\n- **Prudence**", ["loyalty", "candor", "prudence"]),
    ("negation_stops_at_a_semicolon", "Candor; patience; humility about what I can't do; respect for the people I "
     "talk with.", ["candor", "patience", "humility", "respect"]),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in CASES])
def test_extracts_spec_case(text: str, expected: list[str]) -> None:
    assert extract_descriptors(text) == expected


def micro_f1(pairs: list[tuple[list[str], list[str]]]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 over (predicted, gold) descriptor lists, each taken as a set."""
    tp = fp = fn = 0
    for predicted, gold in pairs:
        p, g = set(predicted), set(gold)
        tp, fp, fn = tp + len(p & g), fp + len(p - g), fn + len(g - p)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def measured_f1(label: str, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, float]:
    """Extract from every answer of a labelled JSONL set (`{"text", "gold"}` lines); print and return its size and
    micro-F1."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    precision, recall, f1 = micro_f1([(extract_descriptors(r["text"]), r["gold"]) for r in records])
    with capsys.disabled():
        print(f"\nextraction {label}: n={len(records)} P={precision:.3f} R={recall:.3f} micro-F1={f1:.3f}")
    return len(records), f1


def test_spec_cases_are_many_and_varied() -> None:
    assert len(CASES) >= 40
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


def test_micro_f1_on_spec_cases(capsys: pytest.CaptureFixture[str]) -> None:
    precision, recall, f1 = micro_f1([(extract_descriptors(text), gold) for _, text, gold in CASES])
    with capsys.disabled():
        print(f"\nextraction spec cases: n={len(CASES)} P={precision:.3f} R={recall:.3f} micro-F1={f1:.3f}")
    assert f1 >= 0.95


def test_micro_f1_on_heldout_answers(capsys: pytest.CaptureFixture[str]) -> None:
    n, f1 = measured_f1("held-out", HELDOUT, capsys)
    assert n >= 60
    assert f1 >= 0.90


# --- lexicon and phrase heads

def test_lexicon_holds_the_papers_aligned_and_pretrained_descriptors() -> None:
    appendix_a3 = ["accuracy", "friendliness", "empathy", "inclusivity", "integrity", "justice", "respect",
                   "transparency", "trustworthiness", "honesty", "creativity", "collaboration", "efficiency",
                   "professionalism", "kindness", "altruism", "fairness", "unbiased", "factual", "user-friendly",
                   "helpful", "equality", "clear", "accessible", "religion", "family", "leisure", "freedom", "faith",
                   "independence", "power", "cherish", "environment", "expression", "innovation", "sustainability",
                   "empowerment", "visionary", "community", "money", "leadership", "uniqueness", "art", "law",
                   "marriage", "nonconformity", "work", "loyalty"]
    assert [w for w in appendix_a3 if not is_value_word(w)] == []
    assert len(VALUE_LEXICON) >= 400


def test_is_value_word_ignores_case_and_rejects_plain_words() -> None:
    assert is_value_word("Honesty") and is_value_word(" helpful ")
    assert not is_value_word("table") and not is_value_word("values")


@pytest.mark.parametrize(("phrase", "head"), [
    ("being honest", "honest"),
    ("respect for users", "respect"),
    ("commitment to accuracy", "accuracy"),
    ("user privacy", "privacy"),
    ("respectful responses", "respectful"),
    ("ethical responsibility", "responsibility"),
    ("a strong sense of justice", "justice"),
    ("open-mindedness", "open-mindedness"),
    ("the values", None),
])
def test_phrase_reduces_to_its_head_value_word(phrase: str, head: str | None) -> None:
    assert head_word(phrase) == head


def test_every_elicitation_prompt_echo_yields_nothing() -> None:
    assert len(ELICITATION_PROMPTS) == 15
    assert {p: extract_descriptors(p) for p in ELICITATION_PROMPTS if extract_descriptors(p)} == {}


# --- optional LLM judgment

def test_llm_filter_keeps_only_words_the_judge_names_in_input_order() -> None:
    calls: list[list[dict[str, str]]] = []

    def judge(messages: list[dict[str, str]]) -> str:
        calls.append(messages)
        return 'Sure! ```json\n["honesty", "Fairness"]\n```'

    assert llm_filter(["fairness", "table", "honesty", "fairness"], "any/model", judge) == \
        ["fairness", "honesty", "fairness"]
    assert len(calls) == 1 and '["fairness", "table", "honesty"]' in calls[0][-1]["content"]


def test_llm_filter_batches_distinct_words() -> None:
    seen: list[int] = []

    def judge(messages: list[dict[str, str]]) -> str:
        words = json.loads(messages[-1]["content"].split("\n", 1)[1])
        seen.append(len(words))
        return json.dumps(words)

    words = [f"word{i}" for i in range(7)]
    assert llm_filter(words, "m", judge, batch_size=3) == words
    assert seen == [3, 3, 1]


def test_llm_filter_unparseable_reply_keeps_words_and_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert llm_filter(["honesty"], "m", lambda _messages: "I think so.") == ["honesty"]
    assert any("no JSON list" in str(w.message) for w in caught)


def test_llm_filter_prompt_is_deterministic_for_caching() -> None:
    assert llm_filter_messages(["a", "b"]) == llm_filter_messages(["a", "b"])


# --- CLI contract: valuelex extract IN.jsonl -o OUT.jsonl

def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_extract_file_round_trip(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "in.jsonl", [
        json.dumps({"id": "a", "text": "1. **Honesty**: always\n2. **Respect**: always"}),
        "",
        json.dumps({"id": 7, "text": "I'm sorry, I can't help with that."}),
    ])
    assert extract_file(source, tmp_path / "out" / "out.jsonl") == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / "out.jsonl").read_text().splitlines()]
    assert rows == [{"id": "a", "descriptors": ["honesty", "respect"]}, {"id": 7, "descriptors": []}]


def test_extract_file_with_llm_judgment(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "in.jsonl", [json.dumps({"id": "a", "text": "Honesty, Carrots, Respect"})])
    extract_file(source, tmp_path / "out.jsonl", model="m", call=lambda _m: '["honesty", "respect"]')
    assert json.loads((tmp_path / "out.jsonl").read_text())["descriptors"] == ["honesty", "respect"]


@pytest.mark.parametrize(("content", "message"), [
    (b'{"id": "a", "text": "Honesty"}\nnot json\n', r"in\.jsonl:2: not valid JSON"),
    (b'{"text": "Honesty"}\n', r"in\.jsonl:1: missing or invalid \"id\""),
    (b'{"id": "a"}\n', r"in\.jsonl:1: missing or invalid \"text\""),
    (b'["a", "Honesty"]\n', r"in\.jsonl:1: expected a JSON object"),
    (b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n', r"in\.jsonl:2: not valid UTF-8"),
])
def test_extract_file_bad_line_names_file_and_line_and_keeps_output(tmp_path: Path, content: bytes,
                                                                      message: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n")
    with pytest.raises(UserError, match=message):
        extract_file(source, target)
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_extract_file_missing_input_creates_no_output(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.jsonl: no such file"):
        extract_file(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_extract_file_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "in.jsonl", [json.dumps({"id": "a", "text": "Honesty"})])
    with pytest.raises(UserError, match="overwrite the input"):
        extract_file(source, source)


def test_extract_file_output_path_that_is_a_directory_is_a_user_error(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "in.jsonl", [json.dumps({"id": "a", "text": "Honesty"})])
    with pytest.raises(UserError, match="is a directory"):
        extract_file(source, tmp_path)


def test_llm_filter_goes_through_the_shared_layer_stores_the_verdict_and_reuses_it(tmp_path: Path) -> None:
    """Plumbing (LiteLLM's `mock_response`): the verdict is stored raw before it is parsed, and asked once."""
    from valuelex_utils.llm.roles import RoleCaller
    from valuelex_utils.llm.store import ResponseStore

    def judge() -> RoleCaller:
        return RoleCaller("openai/gpt-4o-mini", tmp_path / "responses.jsonl", role="extraction judge", step="extract",
                          params={"temperature": 0, "mock_response": '["kindness"]'}, tally_dir=tmp_path)

    first = judge()
    assert llm_filter(["kindness", "spoon"], "openai/gpt-4o-mini", first) == ["kindness"]
    records = ResponseStore(tmp_path / "responses.jsonl").records()
    assert len(records) == 1 and records[0]["meta"]["role"] == "extraction judge"
    assert records[0]["response"]["choices"][0]["message"]["content"] == '["kindness"]'
    again = judge()
    assert llm_filter(["kindness", "spoon", "kindness"], "openai/gpt-4o-mini", again) == ["kindness", "kindness"]
    assert again.tally.total("calls") == 0 and again.tally.total("cached") == 1
    steps = [json.loads(line)["step"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert steps == ["extract", "extract"]


def test_a_failing_judge_is_one_line_naming_it_and_writes_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real endpoint that refuses the key (401): one line naming the judge, no output, no retries spent."""
    from tests.support.testing_servers import start_server

    monkeypatch.setenv("VALUELEX_JUDGE_KEY", "sk-wrong")
    source = _write_lines(tmp_path / "in.jsonl", [json.dumps({"id": "a", "text": "I value honesty."})])
    with start_server(require_key_env="SERVER_KEY", env={"SERVER_KEY": "sk-right"}) as server:
        with pytest.raises(UserError) as err:
            extract_file(source, tmp_path / "out.jsonl", model="openai/judge",
                         deployment={"api_base": server.api_base, "api_key_env": "VALUELEX_JUDGE_KEY"})
        assert server.stats()["rejected"] == {"bad_key": 1}
    message = str(err.value)
    assert message.startswith("model openai/judge: AuthenticationError") and "\n" not in message
    assert "sk-wrong" not in message
    assert not (tmp_path / "out.jsonl").exists()


def test_micro_f1_on_real_small_model_answers_stays_above_its_measured_floor(
        capsys: pytest.CaptureFixture[str]) -> None:
    """61 real answers of SmolLM2-135M-Instruct and the Gemma 3 270M base model, labelled blind before the extractor
    was run on them (some rules were later fixed from these batches, so the figure is not fully blind). Measured
    micro-F1 0.845 (P 0.80, R 0.90); after the rules tuned on tests/data/extraction_real_dev.jsonl, measured once
    without tuning on these: 0.865 (P 0.83, R 0.90); after the rules learnt from the dev set and test2 (skills are not
    values, labelled first-person statements, header sentences), still not tuned on these: 0.887 (P 0.87, R 0.91),
    below the 0.90 the project aims at (some of its labels disagree with tests/data/EXTRACTION_LABELS.md); after the
    rules learnt from test3 (and dev, test2), measured once at the end, still not tuned on these: 0.890 (P 0.87,
    R 0.91). The floor guards against regressions."""
    path = Path(__file__).parent / "data" / "extraction_real_small_models.jsonl"
    n, f1 = measured_f1("real small-model answers", path, capsys)
    assert n == 61 and f1 >= 0.88


def test_micro_f1_on_real_dev_answers_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """134 answers (tests/data/extraction_real_dev.jsonl): 52 real SmolLM2-135M-Instruct and 52 real Gemma 3 270M
    answers from outputs/default*/responses.jsonl (none among the 61 above) plus 30 answers written in the style of
    large chat models, all labelled blind before the extractor was run on them. Before the rules were tuned on them:
    micro-F1 0.874 (P 0.869, R 0.880); after: 0.942 (P 0.933, R 0.951); after the rules learnt from test2 as well:
    0.945 (P 0.936, R 0.954); after the rules learnt from test3: 0.952 (P 0.948, R 0.957). A dev set, so the figure is
    optimistic; the floor guards against regressions."""
    n, f1 = measured_f1("real dev", Path(__file__).parent / "data" / "extraction_real_dev.jsonl", capsys)
    assert n == 134 and f1 >= 0.94


def test_micro_f1_on_real_test2_answers_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """93 answers (tests/data/extraction_real_test2.jsonl): 36 real SmolLM2-135M-Instruct and 36 real Gemma 3 270M
    answers from outputs/default*/responses.jsonl that are in neither set above (deduplicated by text), plus 21
    answers written in the styles of large chat models; all labelled by tests/data/EXTRACTION_LABELS.md before the
    extractor was run on them. First (blind) measurement: micro-F1 0.838 (P 0.855, R 0.822; real answers 0.763,
    written large-model answers 0.935). Rules were then learnt from its errors and the dev set's, so the figure after,
    0.902 (P 0.873, R 0.932), is no longer blind; after the rules learnt from test3: 0.921 (P 0.899, R 0.945). The floor
    guards against regressions."""
    n, f1 = measured_f1("real test2", Path(__file__).parent / "data" / "extraction_real_test2.jsonl", capsys)
    assert n == 93 and f1 >= 0.91


def test_micro_f1_on_real_test3_answers_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """80 answers (tests/data/extraction_real_test3.jsonl): 30 real SmolLM2-135M-Instruct and 30 real Gemma 3 270M
    answers from outputs/default*/responses.jsonl in none of the sets above (deduplicated by text and by their first 60
    characters; two per prompt and model), plus 20 answers written in large-model styles unlike test2's (Gemini '###'
    headers, Mistral terse lists, Llama 'As a helpful assistant, I value' prose, numbered lists with sub-bullets,
    capabilities mixed with values); all labelled by tests/data/EXTRACTION_LABELS.md before the extractor was run.
    First (blind) measurement: micro-F1 0.800 (P 0.833, R 0.769; real 0.710 - SmolLM2 0.793, Gemma 0.528 - written
    0.884); two written labels were then found to break the guide ('Respect for autonomy' -> respect, as in dev and
    test2) and corrected, which makes the blind figure 0.811 (written 0.906). Rules were then learnt from its errors,
    so the figure after, 0.917 (P 0.927, R 0.907; real 0.851, written 0.978), is no longer blind."""
    n, f1 = measured_f1("real test3", Path(__file__).parent / "data" / "extraction_real_test3.jsonl", capsys)
    assert n == 80 and f1 >= 0.90


def test_micro_f1_on_new_real_samples_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """80 real answers (tests/data/extraction_real_test4.jsonl): 40 SmolLM2-135M-Instruct, 40 Gemma 3 270M base, from
    a fresh elicitation with the default params but another seed (7771), so none was seen before; sampled with
    random.Random(4) over prompts and configs and labelled by tests/data/EXTRACTION_LABELS.md by a helper who never saw
    the extractor. Blind: micro-F1 0.794 (P 0.889, R 0.717; SmolLM2 0.843, Gemma 0.690). After the rules learnt
    from it and from the written test4 set (one-word sentences, 'not only ... but also', summary labels, a word cut at
    the token limit, 'a person of X', 'I have a deep respect for'): 0.808 (SmolLM2 0.849, Gemma 0.721), no longer
    blind. Most of what is missed is a tiny base model's rambling ('I am a good steward of my community', 'Be open to
    change'), where the labels themselves are the least certain."""
    n, f1 = measured_f1("real test4", Path(__file__).parent / "data" / "extraction_real_test4.jsonl", capsys)
    assert n == 80 and f1 >= 0.80


def test_micro_f1_on_new_written_answers_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """80 answers written in the styles of many real LLMs (tests/data/extraction_written_test4.jsonl: GPT-4, Claude,
    Gemini, Llama-2/3, Mistral, Vicuna, Qwen, Phi, Falcon and base-model continuations; rare value words such as
    probity or forbearance, answers cut mid-word, transcripts, recipes after a list), 411 gold words, labelled by the
    guide by a helper who never saw the extractor. Blind: micro-F1 0.916 (P 0.915, R 0.917). After the rules learnt
    from it and from the sets after it: 0.951 (P 0.949, R 0.954), no longer blind."""
    n, f1 = measured_f1("written test4", Path(__file__).parent / "data" / "extraction_written_test4.jsonl", capsys)
    assert n == 80 and f1 >= 0.94


def test_micro_f1_on_hard_written_answers_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """80 answers written to be hard (tests/data/extraction_written_test5.jsonl, 365 gold words): half reflective
    prose (values as self-descriptions, as things promoted, as mere topics, negated, ranked below others, or held by
    philosophers and other models), half unusual formats (JSON, YAML, code fences, hashtags, `X | Y | Z`, British
    spellings, numbered first-person sentences), in many LLMs' styles; labelled by the guide by a helper who never
    saw the extractor. Blind: micro-F1 0.821 (P 0.831, R 0.811). After the rules learnt from it (structured answers,
    hashtags, counted-off values, groups as subjects, 'rank'): 0.879 (P 0.884, R 0.874), no longer blind."""
    n, f1 = measured_f1("written test5", Path(__file__).parent / "data" / "extraction_written_test5.jsonl", capsys)
    assert n == 80 and f1 >= 0.87


def test_micro_f1_on_longer_real_samples_stays_above_its_measured_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """80 real answers (tests/data/extraction_real_test5.jsonl, 194 gold words): 40 SmolLM2-135M-Instruct and 40
    Gemma 3 270M base answers from a fresh elicitation with seed 9191 and max_tokens 160 (longer answers than the
    default's), sampled with random.Random(5), labelled by the guide by a helper who never saw the extractor.
    Blind: micro-F1 0.790 (P 0.729, R 0.861; SmolLM2 0.822, Gemma 0.749): here the tiny models' rambling costs
    precision. After the rules learnt from it ('I love my family', ordinal adverbs, bullets under a numbered value
    item): 0.821 (P 0.773, R 0.876), no longer blind."""
    n, f1 = measured_f1("real test5", Path(__file__).parent / "data" / "extraction_real_test5.jsonl", capsys)
    assert n == 80 and f1 >= 0.81


def test_micro_f1_on_real_answers_measured_blind_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    """80 real answers (tests/data/extraction_real_test6.jsonl, 148 gold words): 20 SmolLM2 and 20 Gemma answers
    from each of the seed-7771 and seed-9191 elicitations that no other set used, sampled with random.Random(6) and
    labelled by the guide by a helper who never saw the extractor, after the rules of session 3 up to the written
    test6 set were in. Blind: micro-F1 0.826 (P 0.834, R 0.818; SmolLM2 0.822, Gemma 0.833); the extractor as it was
    at the start of session 3 scores 0.818 on it. After four rules learnt from it (a job's duties, verbs in progress,
    'duty of X', 'Non-Profit'): 0.848, no longer blind."""
    n, f1 = measured_f1("real test6", Path(__file__).parent / "data" / "extraction_real_test6.jsonl", capsys)
    assert n == 80 and f1 >= 0.84


def test_micro_f1_on_everyday_written_answers_measured_blind_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    """80 answers written as the paper's respondents typically answer (tests/data/extraction_written_test6.jsonl,
    482 gold words): 35 lists, 20 prose answers, 10 one-liners and 15 pretrained-model continuations, in the styles
    of GPT-3.5/4, Claude, Llama-2-chat, Vicuna, Mistral, Falcon, Baichuan, ChatGLM, Qwen, Yi and their bases; labelled
    by the guide by a helper who never saw the extractor, after every rule of session 3 was in. Blind and never tuned
    on: micro-F1 0.952 (P 0.956, R 0.948); the extractor as it was at the start of session 3 scores 0.949."""
    n, f1 = measured_f1("written test6", Path(__file__).parent / "data" / "extraction_written_test6.jsonl", capsys)
    assert n == 80 and f1 >= 0.94


def test_micro_f1_on_the_last_real_answers_measured_blind(capsys: pytest.CaptureFixture[str]) -> None:
    """60 real answers (tests/data/extraction_real_test7.jsonl, 124 gold words): 15 SmolLM2 and 15 Gemma answers
    from each of the seed-7771 and seed-9191 elicitations that no other set used (random.Random(7)), labelled by the
    guide by a helper who never saw the extractor, after every rule of session 3 was in. Blind and never tuned on:
    micro-F1 0.795 (P 0.763, R 0.831; SmolLM2 0.864, Gemma 0.680), the same as the extractor at the start of session
    3: the rules of session 3 helped written answers, not the tiny base model's rambling."""
    n, f1 = measured_f1("real test7", Path(__file__).parent / "data" / "extraction_real_test7.jsonl", capsys)
    assert n == 60 and f1 >= 0.79


# --- issue 18: the rules as data, a typed skill value, and explain(text) -------------------------------------------

def _real_answers() -> list[str]:
    data = Path(__file__).parent / "data"
    return [json.loads(line)["text"] for path in sorted(data.glob("extraction_real_*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_explain_names_the_rule_for_a_kept_and_a_dropped_word() -> None:
    decisions = {d.word: d for d in explain("I am responsible for overseeing the team, and I am honest.")}
    assert decisions["honest"].kept and "predicated" in decisions["honest"].rule
    assert not decisions["responsible"].kept and "job's duty" in decisions["responsible"].rule
    listed = {d.word: d for d in explain("1. Honesty\n2. Kindness\n3. Problem-solving")}
    assert listed["kindness"].kept and listed["kindness"].rule.startswith("list gate: a value list")
    assert not listed["problem-solving"].kept and "skill" in listed["problem-solving"].rule
    refused = {d.word: d for d in explain("As an AI, I cannot have values like honesty.")}
    assert not refused["honesty"].kept and refused["honesty"].rule.startswith("clause: a refusal")


def test_explain_keeps_exactly_what_extract_descriptors_keeps_on_real_answers() -> None:
    """On every real answer of tests/data (SmolLM2, Gemma and other models' raw answers): the kept words of `explain`
    are `extract_descriptors`'s output in its order, each with a recorded rule, and no dropped word is also kept."""
    answers = _real_answers()
    assert len(answers) >= 500
    dropped_somewhere = 0
    for text in answers:
        decisions = explain(text)
        kept = [d.word for d in decisions if d.kept]
        assert kept == extract_descriptors(text), text[:200]
        assert all(d.rule and d.rule != "unrecorded" for d in decisions), text[:200]
        assert not {d.word for d in decisions if not d.kept} & set(kept)
        dropped_somewhere += any(not d.kept for d in decisions)
    assert dropped_somewhere > len(answers) // 4  # the dropped side is exercised too, not only the kept one


def test_a_skill_is_a_typed_head_not_a_descriptor() -> None:
    assert phrase_head("strategic planning") == Skill("planning")
    assert phrase_head("2 eggs") == NOT_A_VALUE and NOT_A_VALUE.word is None
    assert head_word("strategic planning") is None and head_word("user privacy") == "privacy"
    assert extract_descriptors("I value critical thinking.") == ["thinking"]  # promoted by the trigger


def test_rules_are_data_read_once_with_one_copy_of_the_prompts_and_the_negations() -> None:
    from valuelex_utils.elicitation import elicitation_prompts
    from valuelex_utils.extraction import rules

    assert ELICITATION_PROMPTS == tuple(elicitation_prompts().values()) and len(ELICITATION_PROMPTS) == 15
    text = (Path(rules.__file__).parent.parent / "data" / "extraction_rules.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"^  [a-z_]+:", line)]
    assert len(keys) >= 70 and all(lines[i - 1].lstrip().startswith("#") for i in keys)  # every list says why
    assert "responsible" in rules.DUTY_ADJECTIVES and "# Adjectives that, followed by 'for'" in text
    assert rules.NEGATIONS <= rules.negation_words("extraction") and "not" in rules.negation_words("scoring")
    assert rules.negation_words("extraction") & rules.negation_words("scoring") >= {"not", "never", "without"}
