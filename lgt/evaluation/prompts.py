"""How a benchmark question is asked: the training prompts' system prompt and lettered options, in one fixed style.

Every model (base and fine-tuned) sees the format its training data used: think inside <think>, then the letter
in parentheses inside <answer>. The option style and answer format are fixed so every model is asked alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from lgt.prompts import load_prompt
from schemas.evaluation import EVAL_LETTERS

SYSTEM_PROMPT = "question_system.j2"
USER_PROMPT = "question_user.j2"
OPTION_STYLE = "(A) text"
ANSWER_FORMAT = "(X)"


def mcq_prompts(question: str, options: Sequence[str], reasoning_type: str, has_image: bool = True) -> tuple[str, str]:
    """(system prompt, user prompt) for one multiple-choice question with up to 10 options."""
    if not 2 <= len(options) <= len(EVAL_LETTERS):
        raise ValueError(f"a question needs 2 to {len(EVAL_LETTERS)} options, got {len(options)}")
    system = load_prompt(SYSTEM_PROMPT).render(
        reasoning_type=reasoning_type, answer_format=ANSWER_FORMAT, subject="an image" if has_image else "a text"
    )
    user = load_prompt(USER_PROMPT).render(
        question=question, options=list(zip(EVAL_LETTERS, options)), option_style=OPTION_STYLE
    )
    return system, user


def prompts_version() -> str:
    """The two templates' versions: a benchmark's rows change when either does."""
    return f"{load_prompt(SYSTEM_PROMPT).version};{load_prompt(USER_PROMPT).version}"
