"""What every yujing command prints goes through ``say``: phone and ID numbers masked.

A command's output can quote an event (a bad line of a replay), an alert written before the
engine masked personal data, or a department's feedback note; none of it reaches a terminal, a
shell history or a pasted ticket with a caller's number in it.

>>> say("feedback: called back 13812345678")
feedback: called back 138****5678
"""

from __future__ import annotations

import typer

from topics.personal_data import mask_text


def say(text: str = "", err: bool = False) -> None:
    """Print ``text`` (to stderr with ``err``), phone and ID numbers masked."""
    typer.echo(mask_text(text), err=err)
