//! Outbound SMS text (docs/using.md): what a body costs, how to keep it cheap, and how to fit the provider.
//!
//! An SMS is GSM-7 (the GSM 03.38 default alphabet plus its escape table) when every character
//! allows it, else UCS-2: 160 septets or 70 UTF-16 units in one segment, 153 or 67 per part once
//! concatenated. Parts never split an escape pair or a surrogate pair, so segments are counted by
//! packing, not dividing. One curly quote would make a whole reply UCS-2 (2-3x the segments), so
//! [`smart_encode`] swaps such look-alikes for GSM-7 when that makes the text GSM-7. Bodies over
//! the provider's 1600-character limit are split at word boundaries into numbered parts.

use std::borrow::Cow;

/// The GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape to [`EXTENSION`], not a
/// character: it is a placeholder here and never accepted from text.
#[rustfmt::skip]
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É',
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

const ESCAPE: u8 = 0x1B;

/// The GSM 03.38 extension table: each is sent as [`ESCAPE`] then its code, two septets.
const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Smart encoding: each replacement, then the characters it stands for. Only punctuation and
/// spacing with an unambiguous GSM-7 twin (as in Twilio's Smart Encoding); letters are never
/// transliterated, since that would change names and words.
const LOOK_ALIKES: [(&str, &str); 7] = [
    ("\"", "“”„‟″«»ʺˮ❝❞〝〞〟＂"),
    ("'", "‘’‚‛′‵ʹʻʼʽˈˊˋ´`❛❜＇"),
    // Bullets too: agents paste lists, and "- item" reads the same.
    ("-", "‐‑‒–—―⁃−﹘﹣－•‣"),
    ("...", "…"),
    (
        " ",
        concat!(
            "\t\u{A0}\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200A}",
            "\u{202F}\u{205F}\u{3000}",
        ),
    ),
    ("\n", "\u{2028}\u{2029}"),
    // Invisible: zero-width space, non-joiner, joiner, word joiner, BOM, soft hyphen.
    ("", "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}\u{AD}"),
];

/// The provider's limit for one message body (Twilio: 1600 characters). Counted here in UTF-16
/// units, which is never fewer than characters, so a part within it is within the provider's.
pub const PROVIDER_MAX_UNITS: usize = 1600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// GSM 03.38 default alphabet with its extension table; units are septets.
    Gsm7,
    /// Everything else; units are UTF-16 code units (an emoji is 2).
    Ucs2,
}

impl SmsEncoding {
    /// The most units a message can have and still be one segment.
    pub const fn single_segment_units(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => 160,
            SmsEncoding::Ucs2 => 70,
        }
    }

    /// The units in each segment of a concatenated message (the rest of 140 bytes holds the
    /// concatenation header).
    pub const fn per_part_units(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => 153,
            SmsEncoding::Ucs2 => 67,
        }
    }
}

/// What one message body costs on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsCost {
    pub encoding: SmsEncoding,
    /// Septets (an extension character is 2) for GSM-7, UTF-16 units for UCS-2.
    pub units: usize,
    /// Billed segments. An empty body is GSM-7, 0 units and 1 segment: it is still one SMS.
    pub segments: usize,
}

/// The encoding, units and segments of `text` sent as one message, as it is (see [`smart_encode`]).
pub fn cost(text: &str) -> SmsCost {
    let encoding = if is_gsm7(text) { SmsEncoding::Gsm7 } else { SmsEncoding::Ucs2 };
    let units_of = |c: char| match encoding {
        SmsEncoding::Gsm7 if extension_code(c).is_some() => 2,
        SmsEncoding::Gsm7 => 1,
        SmsEncoding::Ucs2 => c.len_utf16(),
    };
    let units = text.chars().map(units_of).sum();
    let segments = if units <= encoding.single_segment_units() {
        1
    } else {
        // A character (escape pair, surrogate pair) that doesn't fit starts the next segment.
        let mut segments = 1;
        let mut used = 0;
        for char_units in text.chars().map(units_of) {
            if used + char_units > encoding.per_part_units() {
                segments += 1;
                used = 0;
            }
            used += char_units;
        }
        segments
    };
    SmsCost { encoding, units, segments }
}

/// Whether every character of `text` is in the GSM-7 default alphabet or its extension table.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| basic_code(c).is_some() || extension_code(c).is_some())
}

/// `text` with look-alike punctuation and spacing replaced (curly quotes → straight, dashes and
/// bullets → `-`, `…` → `...`, Unicode spaces → space, zero-width characters removed), but only
/// when that makes the whole text GSM-7 without costing more segments; otherwise `text` as is.
/// Like Twilio's Smart Encoding: with an emoji or a non-Latin script the text is UCS-2 anyway, so
/// replacing would lose fidelity for nothing (`…` → `...` even costs units), and a zero-width
/// joiner there may be holding an emoji sequence or a Persian word together.
pub fn smart_encode(text: &str) -> Cow<'_, str> {
    if is_gsm7(text) {
        return Cow::Borrowed(text);
    }
    let mut replaced = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some(replacement) = look_alike(c) {
            replaced.push_str(replacement);
        } else if basic_code(c).is_some() || extension_code(c).is_some() {
            replaced.push(c);
        } else {
            return Cow::Borrowed(text);
        }
    }
    if cost(&replaced).segments <= cost(text).segments { Cow::Owned(replaced) } else { Cow::Borrowed(text) }
}

/// `text` as unpacked septets (one per byte), an extension character as [`ESCAPE`] and its code;
/// `None` if a character is not GSM-7.
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut septets = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(code) = basic_code(c) {
            septets.push(code);
        } else {
            septets.extend([ESCAPE, extension_code(c)?]);
        }
    }
    Some(septets)
}

/// Unpacked septets back to text, as GSM 03.38 tells a receiver to: an escape before a code the
/// extension table lacks shows the default-alphabet character, and a double escape (reserved)
/// shows a space. A trailing escape has nothing to show; a byte above 0x7F is not a septet and
/// shows U+FFFD.
pub fn decode_gsm7(septets: &[u8]) -> String {
    let basic = |code: u8| BASIC.get(usize::from(code)).copied().unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut text = String::with_capacity(septets.len());
    let mut codes = septets.iter().copied();
    while let Some(code) = codes.next() {
        if code != ESCAPE {
            text.push(basic(code));
            continue;
        }
        match codes.next() {
            None => {}
            Some(ESCAPE) => text.push(' '),
            Some(code) => text.push(
                EXTENSION.iter().find(|(extension, _)| *extension == code).map_or_else(|| basic(code), |(_, c)| *c),
            ),
        }
    }
    text
}

/// `text` as the bodies of provider messages. Within [`PROVIDER_MAX_UNITS`] it is one part,
/// unchanged. Longer, it is cut at whitespace (dropped at the cut; no-break spaces don't count)
/// into parts numbered "(1/3) ", each at most [`PROVIDER_MAX_UNITS`] with its prefix; a word
/// longer than a part is cut between characters. Parts are never empty; if only leading and
/// trailing whitespace made it long, the trimmed text is one unnumbered part, and whitespace
/// alone gives no parts (nothing to say).
pub fn split_for_provider(text: &str) -> Vec<String> {
    if utf16_len(text) <= PROVIDER_MAX_UNITS {
        return vec![text.to_owned()];
    }
    let trimmed = text.trim_matches(is_break_space);
    if trimmed.is_empty() {
        return Vec::new();
    }
    if utf16_len(trimmed) <= PROVIDER_MAX_UNITS {
        return vec![trimmed.to_owned()];
    }
    // The prefix's room depends on the part count, which depends on the room: widen until the
    // count's digits fit. Each step only adds parts, and digits are bounded, so this ends.
    let mut digits = 1;
    loop {
        let bodies = pack_words(trimmed, PROVIDER_MAX_UNITS - prefix_room(digits));
        let count = bodies.len();
        if decimal_digits(count) <= digits {
            return bodies.iter().enumerate().map(|(i, body)| format!("({}/{count}) {body}", i + 1)).collect();
        }
        digits = decimal_digits(count);
    }
}

fn basic_code(c: char) -> Option<u8> {
    if c == char::from(ESCAPE) {
        return None;
    }
    BASIC.iter().position(|&basic| basic == c).and_then(|code| u8::try_from(code).ok())
}

fn extension_code(c: char) -> Option<u8> {
    EXTENSION.iter().find(|(_, extension)| *extension == c).map(|(code, _)| *code)
}

fn look_alike(c: char) -> Option<&'static str> {
    LOOK_ALIKES.iter().find(|(_, sources)| sources.contains(c)).map(|(replacement, _)| *replacement)
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Where a long text may be cut. A no-break space asks not to be.
fn is_break_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

/// Room for "(i/n) " when both numbers have up to `digits` digits.
fn prefix_room(digits: usize) -> usize {
    "(/) ".len() + 2 * digits
}

fn decimal_digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Greedy: each part takes whole words (with the whitespace between them) while they fit in
/// `room` units; a word that doesn't fit starts the next part, cut between characters if it is
/// longer than `room`. `text` starts and ends with a non-break character.
fn pack_words(text: &str, room: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    // The current part: its byte range and its units.
    let mut current: Option<(usize, usize, usize)> = None;
    for (word_start, word_end) in words(text) {
        let word_units = utf16_len(&text[word_start..word_end]);
        if let Some((start, end, units)) = current {
            let extended = units + utf16_len(&text[end..word_start]) + word_units;
            if extended <= room {
                current = Some((start, word_end, extended));
                continue;
            }
            parts.push(&text[start..end]);
        }
        let mut start = word_start;
        let mut units = 0;
        for (offset, c) in text[word_start..word_end].char_indices() {
            if units + c.len_utf16() > room {
                parts.push(&text[start..word_start + offset]);
                start = word_start + offset;
                units = 0;
            }
            units += c.len_utf16();
        }
        current = Some((start, word_end, units));
    }
    if let Some((start, end, _)) = current {
        parts.push(&text[start..end]);
    }
    parts
}

/// Byte ranges of the maximal runs of non-break characters.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (start, is_break_space(c)) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gsm_basic_chars() -> Vec<char> {
        BASIC.iter().copied().filter(|&c| c != char::from(ESCAPE)).collect()
    }

    fn gsm_extension_chars() -> Vec<char> {
        EXTENSION.iter().map(|(_, c)| *c).collect()
    }

    fn look_alike_chars() -> Vec<char> {
        LOOK_ALIKES.iter().flat_map(|(_, sources)| sources.chars()).collect()
    }

    fn repeat(c: char, n: usize) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    #[test]
    fn alphabet_sits_at_the_03_38_codes() {
        // GSM 03.38's table, row by row from each row's first code (0x1B, the escape, skipped).
        let rows = [
            (0x00, "@£$¥èéùìòÇ\nØø\rÅå"),
            (0x10, "Δ_ΦΓΛΩΠΨΣΘΞ"),
            (0x1C, "ÆæßÉ"),
            (0x20, " !\"#¤%&'()*+,-./"),
            (0x30, "0123456789:;<=>?"),
            (0x40, "¡ABCDEFGHIJKLMNO"),
            (0x50, "PQRSTUVWXYZÄÖÑÜ§"),
            (0x60, "¿abcdefghijklmno"),
            (0x70, "pqrstuvwxyzäöñüà"),
        ];
        for (first, row) in rows {
            let codes: Vec<u8> = (first..).take(row.chars().count()).collect();
            assert_eq!(encode_gsm7(row), Some(codes), "{row:?}");
        }
        let extension = [
            ('\u{C}', 0x0A),
            ('^', 0x14),
            ('{', 0x28),
            ('}', 0x29),
            ('\\', 0x2F),
            ('[', 0x3C),
            ('~', 0x3D),
            (']', 0x3E),
            ('|', 0x40),
            ('€', 0x65),
        ];
        for (c, code) in extension {
            assert_eq!(encode_gsm7(&c.to_string()), Some(vec![ESCAPE, code]), "{c:?}");
        }
        assert_eq!(encode_gsm7(""), Some(vec![]));
        assert_eq!(gsm_basic_chars().len(), 127);
        assert!(gsm_extension_chars().iter().all(|c| !BASIC.contains(c)), "no character in both tables");
    }

    #[test]
    fn printable_ascii_is_gsm7_except_the_backtick() {
        for c in ' '..='~' {
            assert_eq!(is_gsm7(&c.to_string()), c != '`', "{c:?}");
        }
    }

    #[test]
    fn escape_tab_and_lookalike_letters_are_not_gsm7() {
        for text in ["\u{1B}", "\t", "ç", "á", "Α", "α", "ж", "😀", "“", "\u{A0}"] {
            assert!(!is_gsm7(text), "{text:?}");
            assert_eq!(encode_gsm7(text), None, "{text:?}");
            assert_eq!(cost(text).encoding, SmsEncoding::Ucs2, "{text:?}");
        }
    }

    #[test]
    fn decoding_follows_03_38_for_odd_input() {
        let cases: [(&[u8], &str); 6] = [
            (&[0x1B, 0x41], "A"),        // no such extension: the default-alphabet character
            (&[0x1B, 0x1B, 0x41], " A"), // reserved double escape: a space
            (&[0x41, 0x1B], "A"),        // trailing escape: nothing after it to show
            (&[0x80, 0x41], "\u{FFFD}A"),
            (&[0x1B, 0xFF], "\u{FFFD}"),
            (&[0x00, 0x1B, 0x65, 0x7F], "@€à"),
        ];
        for (septets, text) in cases {
            assert_eq!(decode_gsm7(septets), text, "{septets:02X?}");
        }
    }

    #[test]
    fn every_gsm7_character_round_trips() {
        for c in gsm_basic_chars().into_iter().chain(gsm_extension_chars()) {
            let text = c.to_string();
            let septets = encode_gsm7(&text).expect("GSM-7");
            assert_eq!(septets.len(), cost(&text).units, "{c:?}");
            assert_eq!(decode_gsm7(&septets), text, "{c:?}");
        }
    }

    #[test]
    fn gsm7_segments() {
        let a = |n| repeat('a', n);
        let cases = [
            (String::new(), 0, 1),
            (a(1), 1, 1),
            (a(160), 160, 1),
            (a(161), 161, 2),
            (a(306), 306, 2),
            (a(307), 307, 3),
            ("€".to_owned(), 2, 1),
            (repeat('€', 80), 160, 1),
            (repeat('€', 81), 162, 2),
            // 153 per part is odd, so each part holds 76 "€" and wastes a septet.
            (repeat('€', 153), 306, 3),
            // 306 septets, but the escape pair at septet 153 moves to the second part.
            (format!("{}€{}", a(152), a(152)), 306, 3),
            (format!("{}€{}", a(151), a(153)), 306, 2),
        ];
        for (text, units, segments) in cases {
            let expected = SmsCost { encoding: SmsEncoding::Gsm7, units, segments };
            assert_eq!(cost(&text), expected, "{text:?}");
        }
    }

    #[test]
    fn ucs2_segments() {
        let zh = |n| repeat('ж', n);
        let cases = [
            ("😀".to_owned(), 2, 1),
            (format!("{}😀", repeat('a', 159)), 161, 3),
            (zh(70), 70, 1),
            (zh(71), 71, 2),
            (format!("{}😀", zh(68)), 70, 1),
            (format!("{}😀", zh(69)), 71, 2),
            (zh(134), 134, 2),
            // 134 units, but the surrogate pair at units 67-68 moves to the second part.
            (format!("{}😀{}", zh(66), zh(66)), 134, 3),
            (format!("{}😀{}", zh(65), zh(67)), 134, 2),
        ];
        for (text, units, segments) in cases {
            let expected = SmsCost { encoding: SmsEncoding::Ucs2, units, segments };
            assert_eq!(cost(&text), expected, "{text:?}");
        }
    }

    #[test]
    fn greek_capitals_in_the_alphabet_stay_gsm7() {
        assert_eq!(cost("ΔΦΓΛΩΠΨΣΘΞ Athens").encoding, SmsEncoding::Gsm7);
        // Lowercase Greek, and capitals drawn like Latin ones (Α, Β), are not in it.
        for text in ["Δα", "Ωμέγα", "ΑΒΓ"] {
            assert_eq!(cost(text).encoding, SmsEncoding::Ucs2, "{text:?}");
        }
    }

    #[test]
    fn smart_encoding_replaces_look_alikes() {
        let cases = [
            ("“Hi” — it’s…", "\"Hi\" - it's..."),
            ("‘a’ ‚b‛ „c‟ 5′ 6″ «d»", "'a' 'b' \"c\" 5' 6\" \"d\""),
            ("1–2 3−4 • item", "1-2 3-4 - item"),
            ("a\u{A0}b\u{2009}c\u{3000}d\te", "a b c d e"),
            ("zero\u{200B}width\u{FEFF} soft\u{AD}hyphen", "zerowidth softhyphen"),
            ("line\u{2028}next", "line\nnext"),
        ];
        for (text, expected) in cases {
            let encoded = smart_encode(text);
            assert_eq!(encoded, expected, "{text:?}");
            assert!(is_gsm7(&encoded), "{text:?}");
        }
    }

    #[test]
    fn smart_encoding_leaves_texts_that_stay_ucs2_alone() {
        for text in ["“Hi” 😀", "👨\u{200D}👩\u{200D}👧 family", "Привет — “друг”", "café ç"]
        {
            assert!(matches!(smart_encode(text), Cow::Borrowed(t) if t == text), "{text:?}");
        }
        let gsm = "Plain \"text\" - already GSM-7 €";
        assert!(matches!(smart_encode(gsm), Cow::Borrowed(t) if t == gsm));
    }

    #[test]
    fn smart_encoding_never_costs_more_segments() {
        // 70 "…" fit one UCS-2 segment; as 210 septets they would take two.
        let ellipses = repeat('…', 70);
        assert_eq!(smart_encode(&ellipses), ellipses);
        assert_eq!(smart_encode(&repeat('…', 53)), "...".repeat(53));
    }

    #[test]
    fn look_alike_table_only_maps_non_gsm7_to_gsm7() {
        for (replacement, sources) in LOOK_ALIKES {
            assert!(is_gsm7(replacement), "{replacement:?}");
            for c in sources.chars() {
                assert!(!is_gsm7(&c.to_string()), "{c:?} needs no replacement");
            }
        }
        let sources = look_alike_chars();
        for (i, c) in sources.iter().enumerate() {
            assert!(!sources[i + 1..].contains(c), "{c:?} listed twice");
        }
    }

    #[test]
    fn short_text_is_one_part_unchanged() {
        for text in ["", "  hi  ", &repeat('a', PROVIDER_MAX_UNITS), &repeat('😀', PROVIDER_MAX_UNITS / 2)] {
            assert_eq!(split_for_provider(text), [text]);
        }
    }

    #[test]
    fn long_text_splits_at_words_into_numbered_parts() {
        let text = "word ".repeat(400); // 2000 units
        let parts = split_for_provider(&text);
        assert_eq!(parts.len(), 2);
        // "(1/2) " leaves 1594 units: 319 words (1594 with the 318 spaces between them).
        assert_eq!(parts[0], format!("(1/2) {}", ["word"; 319].join(" ")));
        assert_eq!(parts[1], format!("(2/2) {}", ["word"; 81].join(" ")));
    }

    #[test]
    fn long_word_is_cut_between_characters() {
        let parts = split_for_provider(&repeat('x', 3500));
        assert_eq!(
            parts,
            [
                format!("(1/3) {}", repeat('x', 1594)),
                format!("(2/3) {}", repeat('x', 1594)),
                format!("(3/3) {}", repeat('x', 312))
            ]
        );
        // 1 + 796 * 2 = 1593 units; the next emoji would need 1595 of the 1594.
        let parts = split_for_provider(&format!("a{}", repeat('😀', 1000)));
        assert_eq!(parts, [format!("(1/2) a{}", repeat('😀', 796)), format!("(2/2) {}", repeat('😀', 204))]);
    }

    #[test]
    fn ten_or_more_parts_reserve_room_for_two_digit_numbers() {
        let parts = split_for_provider(&repeat('x', 9 * 1594 + 1));
        assert_eq!(parts.len(), 10);
        assert!(parts[0].starts_with("(1/10) x") && parts[9].starts_with("(10/10) x"));
        assert!(parts.iter().all(|part| utf16_len(part) <= PROVIDER_MAX_UNITS));
    }

    #[test]
    fn whitespace_at_the_ends_of_a_long_text_is_dropped() {
        let padding = repeat(' ', PROVIDER_MAX_UNITS);
        assert_eq!(split_for_provider(&format!("{padding}hello\nthere{padding}")), ["hello\nthere"]);
        assert_eq!(split_for_provider(&padding.repeat(2)), Vec::<String>::new());
    }

    #[test]
    fn no_break_space_holds_words_together() {
        let text = format!("{} {}\u{A0}{}", repeat('a', 1500), repeat('b', 50), repeat('c', 50));
        let parts = split_for_provider(&text);
        assert_eq!(
            parts,
            [format!("(1/2) {}", repeat('a', 1500)), format!("(2/2) {}\u{A0}{}", repeat('b', 50), repeat('c', 50))]
        );
    }

    fn gsm_char() -> impl Strategy<Value = char> {
        prop_oneof![3 => prop::sample::select(gsm_basic_chars()), 1 => prop::sample::select(gsm_extension_chars())]
    }

    fn gsm_text() -> impl Strategy<Value = String> {
        prop::collection::vec(gsm_char(), 0..480).prop_map(String::from_iter)
    }

    fn sms_char() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => gsm_char(),
            1 => prop::sample::select(vec!['ж', 'α', '中', 'ç']),
            1 => prop::sample::select(vec!['😀', '👍', '𝄞']),
        ]
    }

    fn sms_text() -> impl Strategy<Value = String> {
        prop_oneof![gsm_text(), prop::collection::vec(sms_char(), 0..240).prop_map(String::from_iter)]
    }

    fn smart_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            6 => gsm_char(),
            3 => prop::sample::select(look_alike_chars()),
            1 => prop::sample::select(vec!['😀', 'ж', '\u{200D}']),
        ];
        prop::collection::vec(c, 0..200).prop_map(String::from_iter)
    }

    /// Words of letters, emoji and no-break spaces between runs of breaking whitespace; now and
    /// then a word too long for one part.
    fn long_text() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            20 => prop::collection::vec(prop::sample::select(vec!['a', 'é', 'ж', '😀', '\u{A0}']), 1..12),
            1 => prop::collection::vec(prop::sample::select(vec!['x', '😀']), 1..2500),
        ]
        .prop_map(String::from_iter);
        let gap = prop::sample::select(vec![" ", " ", " ", "\n", "  ", "\n\n", " \t ", "\u{3000}"]);
        (gap.clone(), prop::collection::vec((word, gap), 0..400))
            .prop_map(|(lead, items)| items.into_iter().fold(lead.to_owned(), |text, (word, gap)| text + &word + gap))
    }

    /// Checks that `text` is `bodies` in order with only breaking whitespace around and between
    /// them, and returns what lies between consecutive bodies.
    fn gaps<'a>(text: &'a str, bodies: &[&str]) -> Result<Vec<&'a str>, TestCaseError> {
        let mut rest = text.trim_start_matches(is_break_space);
        let mut gaps = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            if i > 0 {
                let after_gap = rest.trim_start_matches(is_break_space);
                gaps.push(&rest[..rest.len() - after_gap.len()]);
                rest = after_gap;
            }
            prop_assert!(rest.starts_with(body), "part {} is not the next piece of the text", i + 1);
            rest = &rest[body.len()..];
        }
        prop_assert!(rest.chars().all(is_break_space), "text left over: {:?}", rest);
        Ok(gaps)
    }

    proptest! {
        #[test]
        fn gsm7_text_round_trips(text in gsm_text()) {
            let septets = encode_gsm7(&text).expect("GSM-7");
            prop_assert_eq!(septets.len(), cost(&text).units);
            prop_assert_eq!(decode_gsm7(&septets), text);
        }

        #[test]
        fn default_alphabet_septets_round_trip(septets in prop::collection::vec((0u8..0x80).prop_filter("escape", |s| *s != ESCAPE), 0..200)) {
            prop_assert_eq!(encode_gsm7(&decode_gsm7(&septets)), Some(septets));
        }

        #[test]
        fn encoding_is_gsm7_exactly_when_every_char_encodes(text in sms_text()) {
            let gsm = text.chars().all(|c| encode_gsm7(&c.to_string()).is_some());
            prop_assert_eq!(is_gsm7(&text), gsm);
            prop_assert_eq!(encode_gsm7(&text).is_some(), gsm);
            prop_assert_eq!(cost(&text).encoding, if gsm { SmsEncoding::Gsm7 } else { SmsEncoding::Ucs2 });
            if !gsm {
                prop_assert_eq!(cost(&text).units, utf16_len(&text));
            }
        }

        #[test]
        fn segments_never_drop_when_a_char_is_appended(text in sms_text(), c in sms_char()) {
            let longer = format!("{text}{c}");
            prop_assert!(cost(&longer).segments >= cost(&text).segments);
        }

        #[test]
        fn segments_are_bounded_by_the_part_sizes(text in sms_text()) {
            let SmsCost { encoding, units, segments } = cost(&text);
            prop_assert_eq!(segments == 1, units <= encoding.single_segment_units());
            if segments > 1 {
                prop_assert!(segments >= units.div_ceil(encoding.per_part_units()));
                // Only a pair that doesn't fit wastes room, and it wastes one unit.
                prop_assert!(segments <= units.div_ceil(encoding.per_part_units() - 1));
            }
        }

        #[test]
        fn smart_encoding_only_ever_yields_cheaper_gsm7(text in smart_text()) {
            let encoded = smart_encode(&text);
            let convertible = text.chars().all(|c| is_gsm7(&c.to_string()) || look_alike(c).is_some());
            if encoded != text {
                prop_assert!(is_gsm7(&encoded));
                prop_assert!(convertible);
                prop_assert!(cost(&encoded).segments <= cost(&text).segments);
            } else if convertible && !is_gsm7(&text) {
                // Left alone only when replacing would cost more.
                prop_assert!(text.contains('…'));
            }
            prop_assert_eq!(smart_encode(&encoded), encoded.clone());
        }

        #[test]
        fn text_within_the_limit_is_one_part_unchanged(text in "\\PC{0,800}") {
            prop_assert_eq!(split_for_provider(&text), [text]);
        }
    }

    proptest! {
        // Texts of up to tens of thousands of characters: 64 of them (not 256) keep this law
        // under a second in a debug build.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn long_text_parts_are_numbered_bounded_and_lose_only_whitespace(text in long_text()) {
            let parts = split_for_provider(&text);
            if utf16_len(&text) <= PROVIDER_MAX_UNITS {
                prop_assert_eq!(parts, [text]);
                return Ok(());
            }
            prop_assert!(parts.iter().all(|part| utf16_len(part) <= PROVIDER_MAX_UNITS));
            let count = parts.len();
            let bodies: Vec<&str> = if count == 1 {
                parts.iter().map(String::as_str).collect()
            } else {
                parts
                    .iter()
                    .enumerate()
                    .map(|(i, part)| part.strip_prefix(&format!("({}/{count}) ", i + 1)).expect("numbered"))
                    .collect()
            };
            prop_assert_eq!(count == 0, text.chars().all(is_break_space));
            let trimmed = bodies.iter().all(|body| {
                body.starts_with(|c| !is_break_space(c)) && body.ends_with(|c| !is_break_space(c))
            });
            prop_assert!(trimmed, "a part starts or ends with whitespace");
            let gaps = gaps(&text, &bodies)?;
            // Greedy: a part ends only where the next word (or, inside a cut word, the next
            // character) would not have fitted.
            let room = PROVIDER_MAX_UNITS - prefix_room(decimal_digits(count));
            for (i, gap) in gaps.iter().enumerate() {
                let next_word = bodies[i + 1].split(is_break_space).next().unwrap_or_default();
                prop_assert!(utf16_len(bodies[i]) + utf16_len(gap) + utf16_len(next_word) > room, "part {} ended early", i + 1);
            }
        }
    }
}
