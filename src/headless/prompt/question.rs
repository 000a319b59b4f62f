//! What a headless question offers and how a key press is read: the choices (their keys and
//! words), the question's text (the go-ahead's is written here), and the bytes of one read of the
//! terminal decoded into keys. Putting the terminal in raw mode and reading it is `prompt`'s.

use crate::engine::StepRef;
use crate::runbook::{Step, StepKind};

/// What a key does in a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Enter (or `y`): the go-ahead for the step asked about.
    Confirm,
    /// `y` only: the go-ahead for an irreversible step.
    ConfirmIrreversible,
    Skip,
    Retry,
    MarkDone,
    Acknowledge,
    Rollback,
    Stop,
}

impl Choice {
    pub(super) fn key(self) -> &'static str {
        match self {
            Choice::Confirm => "Enter",
            Choice::ConfirmIrreversible => "y",
            Choice::Skip => "s",
            Choice::Retry => "r",
            Choice::MarkDone => "d",
            Choice::Acknowledge => "a",
            Choice::Rollback => "R",
            Choice::Stop => "q",
        }
    }

    pub(super) fn words(self) -> &'static str {
        match self {
            Choice::Confirm | Choice::ConfirmIrreversible => "go ahead",
            Choice::Skip => "skip",
            Choice::Retry => "retry",
            Choice::MarkDone => "mark done",
            Choice::Acknowledge => "acknowledge",
            Choice::Rollback => "roll back",
            Choice::Stop => "stop",
        }
    }

    /// The choice a key press stands for, among those offered.
    pub(super) fn of(key: &Key, offered: &[Choice]) -> Option<Choice> {
        offered.iter().copied().find(|c| match (c, key) {
            (Choice::Confirm, Key::Enter) => true,
            (Choice::Confirm | Choice::ConfirmIrreversible, Key::Char('y')) => true,
            (_, Key::Char(ch)) => c.key().len() == 1 && c.key().starts_with(*ch),
            _ => false,
        })
    }
}

/// A question: lines of context (printed once), then the line of choices, which stays last.
#[derive(Debug, Clone)]
pub struct Question {
    pub context: String,
    pub choices: String,
    pub offered: Vec<Choice>,
    /// The step the question is about: a go-ahead names it.
    pub at: StepRef,
}

/// A key as read from the terminal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Key {
    Enter,
    Backspace,
    /// Ctrl-U: clear the typed text.
    Clear,
    Esc,
    Char(char),
    /// Anything else (an arrow, a function key, a control character), described.
    Other(String),
}

/// Decodes what one read of the terminal returned: usually one key, sometimes typed-ahead text.
pub(super) fn keys(bytes: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\r' | '\n' => Key::Enter,
            '\u{7f}' | '\u{8}' => Key::Backspace,
            '\u{15}' => Key::Clear,
            '\u{1b}' => {
                // An escape sequence (arrows, function keys) arrives in one read; a lone Esc is Esc.
                if chars.peek().is_some_and(|n| *n == '[' || *n == 'O') {
                    let mut seq = String::from("Esc ");
                    for n in chars.by_ref() {
                        seq.push(n);
                        if n.is_ascii_alphabetic() || n == '~' {
                            break;
                        }
                    }
                    Key::Other(format!("the key sending `{}`", seq.escape_debug()))
                } else {
                    Key::Esc
                }
            }
            c if c.is_control() => Key::Other(format!("Ctrl-{}", ((c as u8) + b'@') as char)),
            c => Key::Char(c),
        });
    }
    out
}

/// The go-ahead: the step's title and what it does, then the choices (`y` only for a step
/// that cannot be undone).
pub(in crate::headless) fn go_ahead_question(
    name: &str,
    step: &Step,
    irreversible: bool,
    at: StepRef,
) -> Question {
    let mut context = String::new();
    if irreversible {
        context.push_str(&format!(
            "IRREVERSIBLE: {name} cannot be undone by the rollback procedure.\n"
        ));
    }
    context.push_str(&format!("{name}: {}\n", step.title));
    if let StepKind::Manual(Some(instruction)) = &step.kind {
        context.push_str(&format!("    {instruction}\n"));
    }
    if let StepKind::Run(cmd) = &step.kind {
        context.push_str(&format!("    $ {cmd}\n"));
    }
    let (choices, first) = if irreversible {
        (
            format!("{name}: [y] run it, [s] skip, [R] roll back, [q] stop the run: "),
            Choice::ConfirmIrreversible,
        )
    } else {
        (
            format!("{name}: [Enter] confirm, [s] skip, [R] roll back, [q] stop the run: "),
            Choice::Confirm,
        )
    };
    Question {
        context,
        choices,
        offered: vec![first, Choice::Skip, Choice::Rollback, Choice::Stop],
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_keys() {
        assert_eq!(keys(b"s"), [Key::Char('s')]);
        assert_eq!(keys(b"\n"), [Key::Enter]);
        assert_eq!(keys(b"\x1b"), [Key::Esc]);
        assert_eq!(keys(b"ab\x7f"), [Key::Char('a'), Key::Char('b'), Key::Backspace]);
        assert!(matches!(&keys(b"\x1b[A")[..], [Key::Other(s)] if s.contains("Esc [A")));
        assert_eq!(keys("é".as_bytes()), [Key::Char('é')]);
        assert_eq!(keys(b"\x04"), [Key::Other("Ctrl-D".into())]);
    }

    #[test]
    fn a_key_means_only_what_is_offered() {
        let go = [Choice::Confirm, Choice::Skip, Choice::Rollback, Choice::Stop];
        assert_eq!(Choice::of(&Key::Enter, &go), Some(Choice::Confirm));
        assert_eq!(Choice::of(&Key::Char('y'), &go), Some(Choice::Confirm));
        assert_eq!(Choice::of(&Key::Char('R'), &go), Some(Choice::Rollback));
        assert_eq!(Choice::of(&Key::Char('r'), &go), None);
        assert_eq!(Choice::of(&Key::Char('a'), &go), None);
        let irreversible = [Choice::ConfirmIrreversible, Choice::Skip];
        assert_eq!(Choice::of(&Key::Enter, &irreversible), None);
        assert_eq!(
            Choice::of(&Key::Char('y'), &irreversible),
            Some(Choice::ConfirmIrreversible)
        );
    }
}
