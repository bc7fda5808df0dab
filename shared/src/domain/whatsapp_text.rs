//! Agents' WhatsApp text on its way to an SMS (docs/media.md): formatting markers removed.
//!
//! WhatsApp formats `*bold*`, `_italic_`, `~strike~`, `` `code` `` and ```` ```block``` ````
//! only when a marker pair hugs text at word boundaries, so `2*3*4`, `snake_case_name` and
//! `5 * 2` stay as typed. This module applies the same rule in reverse.

const INLINE_MARKERS: [char; 4] = ['*', '_', '~', '`'];

pub fn strip_formatting(text: &str) -> String {
    let without_blocks = text.replace("```", "");
    let mut chars: Vec<char> = without_blocks.chars().collect();
    for marker in INLINE_MARKERS {
        chars = strip_marker(&chars, marker);
    }
    chars.into_iter().collect()
}

fn strip_marker(chars: &[char], marker: char) -> Vec<char> {
    let mut remove = vec![false; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == marker
            && opens(chars, i)
            && let Some(j) =
                (i + 2..chars.len()).take_while(|&j| chars[j] != '\n').find(|&j| chars[j] == marker && closes(chars, j))
        {
            remove[i] = true;
            remove[j] = true;
            i = j + 1;
            continue;
        }
        i += 1;
    }
    chars.iter().zip(remove).filter(|(_, r)| !r).map(|(c, _)| *c).collect()
}

/// An opening marker follows a boundary and precedes text.
fn opens(chars: &[char], i: usize) -> bool {
    let before_ok = i == 0 || !chars[i - 1].is_alphanumeric();
    let after_ok = chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
    before_ok && after_ok
}

/// A closing marker follows text and precedes a boundary.
fn closes(chars: &[char], j: usize) -> bool {
    let before_ok = !chars[j - 1].is_whitespace();
    let after_ok = chars.get(j + 1).is_none_or(|c| !c.is_alphanumeric());
    before_ok && after_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn removes_paired_markers() {
        let cases = [
            ("*Hello* _there_ ~old~ `code`", "Hello there old code"),
            ("We open at *9am*, see you!", "We open at 9am, see you!"),
            ("```\nline 1\nline 2\n```", "\nline 1\nline 2\n"),
            ("_*both*_", "both"),
            ("(*note*)", "(note)"),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_formatting(input), expected, "{input:?}");
        }
    }

    #[test]
    fn leaves_markers_that_are_not_formatting() {
        for input in [
            "2*3*4",
            "snake_case_name",
            "5 * 2 = 10",
            "a * b *",
            "*not closed",
            "email me at first_last@example.com",
            "~ 5 min",
            "*across\nlines*",
            "**",
        ] {
            assert_eq!(strip_formatting(input), input, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn text_without_markers_is_unchanged(text in "[^*_~`]{0,80}") {
            prop_assert_eq!(strip_formatting(&text), text);
        }

        #[test]
        fn only_markers_are_removed(text in "\\PC{0,80}") {
            let stripped = strip_formatting(&text);
            let letters = |s: &str| s.chars().filter(|c| !"*_~`".contains(*c)).collect::<String>();
            prop_assert_eq!(letters(&stripped), letters(&text));
        }
    }
}
