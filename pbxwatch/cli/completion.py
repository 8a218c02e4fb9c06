"""``pbxwatch completion bash``: a Bash completion script made from the
parser itself, so it names every command and option there is."""

from __future__ import annotations

import argparse

from pbxwatch.cli.parser import build

TEMPLATE = """\
# pbxwatch completion for bash: eval "$(pbxwatch completion bash)"
_pbxwatch() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmd="" word
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case $word in -*) ;; *) cmd=$word; break;; esac
    done
    local opts
    case $cmd in
{cases}
        *) opts="{top}";;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    case $cur in -*) ;; *) [ -n "$cmd" ] && COMPREPLY+=($(compgen -f -- "$cur"));; esac
}}
complete -F _pbxwatch pbxwatch
"""


def _words(p: argparse.ArgumentParser) -> list[str]:
    out: list[str] = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            out += list(action.choices)
        elif action.option_strings:
            out += [s for s in action.option_strings if s.startswith("--")]
        elif action.choices:
            out += [str(c) for c in action.choices]
    return out


def bash_script() -> str:
    top = build()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    cases = "\n".join(f'        {name}) opts="{" ".join(_words(parser))}";;'
                      for name, parser in sub.choices.items())  # fmt: skip
    return TEMPLATE.format(cases=cases, top=" ".join(_words(top)))


def completion(args: argparse.Namespace) -> int:
    print(bash_script(), end="")
    return 0
