//! The http(s) URL check both providers' rules share (Graph media links, Twilio `MediaUrl` and `StatusCallback`).
//!
//! Deliberately small and strict, not a general URL parser: a scheme of `http://` or `https://` (any case),
//! an optional `userinfo@`, a non-empty host (a name of ASCII letters, digits, `-`, `.` and `_`, an IPv4
//! address, or a bracketed IPv6 address) with an optional numeric port, then anything after `/`, `?` or
//! `#`. No whitespace or control characters anywhere.

/// Whether `url` is an `http://` or `https://` URL with a host (see the module documentation).
pub fn is_http_url(url: &str) -> bool {
    http_url_host(url).is_some()
}

/// The host of an `http://` or `https://` URL (any case) when the URL has a non-empty host (name, IPv4 or
/// bracketed IPv6, returned without its brackets) with an optional numeric port and no whitespace or
/// control characters.
pub fn http_url_host(url: &str) -> Option<&str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let rest = strip_prefix_ignore_case(url, "https://").or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    host(host_and_port)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { text.get(prefix.len()..) } else { None }
}

/// The host of `host[:port]` or `[v6][:port]`, if both parts are well formed and the host is non-empty.
fn host(host_and_port: &str) -> Option<&str> {
    if let Some(bracketed) = host_and_port.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let valid_v6 = !inside.is_empty() && inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        let valid_port = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return (valid_v6 && valid_port).then_some(inside);
    }
    let (host, port) = match host_and_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_and_port, None),
    };
    let valid_host =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    let valid_port = port.is_none_or(is_port);
    (valid_host && valid_port).then_some(host)
}

/// 1 to 5 ASCII digits that fit a `u16`.
fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_of_accepted_urls() {
        let cases = [
            ("https://e.com/a.png", "e.com"),
            ("https://e.com", "e.com"),
            ("HTTP://E.COM/A.PNG", "E.COM"),
            ("HtTpS://e.com", "e.com"),
            ("http://localhost:8080/x", "localhost"),
            ("http://127.0.0.1/x", "127.0.0.1"),
            ("http://127.0.0.1:8080/a", "127.0.0.1"),
            ("https://user:pw@e.com/x", "e.com"),
            ("https://a@b@e.com/x", "e.com"),
            ("https://[::1]/a", "::1"),
            ("https://[::1]:443/x", "::1"),
            ("https://[::ffff:127.0.0.1]/x", "::ffff:127.0.0.1"),
            ("https://my_bucket.s3.example.com/a", "my_bucket.s3.example.com"),
            ("https://e.com?x=1", "e.com"),
            ("https://e.com#frag", "e.com"),
            ("https://e.com:65535/a", "e.com"),
            ("https://e.com:00080/a", "e.com"),
            ("http://localhost:3000/twilio/status?sig=a%20b", "localhost"),
            ("https://e.com/é", "e.com"),
        ];
        for (url, host) in cases {
            assert_eq!(http_url_host(url), Some(host), "{url:?}");
            assert!(is_http_url(url), "{url:?}");
        }
    }

    #[test]
    fn rejected_urls() {
        let cases = [
            "",
            "e.com/a.png",
            "//e.com/a",
            "ftp://e.com/a",
            "htttp://e.com/a",
            "https:/e.com",
            "https://",
            "https:///a.png",
            "https://?x",
            "https://#x",
            "https://user@/a",
            "https://e.com:/a",
            "https://e.com:port/a",
            "https://e.com:abc/a",
            "https://e.com:65536/a",
            "https://e.com:123456/a",
            "https://e.com:-1/a",
            "https://a:b:c/a",
            "https://e .com/a",
            "https://e.com/a b",
            "https://e.com/a\tb",
            "https://e.com/a\u{7f}",
            " https://e.com",
            "https://e.com\n",
            "https://é.com/a",
            "https://e!.com/a",
            "https://[zz]/a",
            "https://[::1/a",
            "https://[]/a",
            "https://[::1]x/a",
            "https://[::1]:/a",
            "https://[::1]:99999/a",
            "https:\u{a0}//e.com",
            "httpsé://e.com",
        ];
        for url in cases {
            assert_eq!(http_url_host(url), None, "{url:?}");
            assert!(!is_http_url(url), "{url:?}");
        }
    }

    #[test]
    fn ports() {
        for good in ["0", "1", "80", "65535", "00080"] {
            assert!(is_port(good), "{good:?}");
        }
        for bad in ["", "65536", "123456", "-1", "+1", "8a", " 80", "٨٠"] {
            assert!(!is_port(bad), "{bad:?}");
        }
    }

    #[test]
    fn prefix_match_ignores_ascii_case_only() {
        assert_eq!(strip_prefix_ignore_case("HTTPS://x", "https://"), Some("x"));
        assert_eq!(strip_prefix_ignore_case("https://", "https://"), Some(""));
        assert_eq!(strip_prefix_ignore_case("http", "https://"), None);
        // A multi-byte character across the prefix boundary is not a match (and does not panic).
        assert_eq!(strip_prefix_ignore_case("https:/é", "https://"), None);
        assert_eq!(strip_prefix_ignore_case("http:/é", "http://"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_host_is_a_clean_part_of_the_url(url in "(?i:https?://)?[a-z0-9_.:@\\[\\]/?# é-]{0,24}") {
            if let Some(host) = http_url_host(&url) {
                prop_assert!(!host.is_empty());
                prop_assert!(url.contains(host));
                prop_assert!(host.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c)));
            }
            prop_assert_eq!(is_http_url(&url), http_url_host(&url).is_some());
        }
    }
}
