//! Interactive list messages (`interactive.type` `"list"`): up to ten sections holding up to ten rows in all,
//! with unique row ids.

use serde::Serialize;

use super::GraphContent;
use super::error::GraphError;
use super::interactive::{Uniques, interactive_frame};
use super::json::{Obj, check_len, expect_obj, opt_str, req_array, req_obj, req_str};
use super::path::Path;

/// List `<MESSAGE_BODY_TEXT>`: "Maximum 4096 characters" (Interactive list messages).
pub const LIST_BODY_MAX: usize = 4096;
/// List `<BUTTON_TEXT>`: "Maximum 20 characters".
pub const LIST_BUTTON_MAX: usize = 20;
/// List: "up to 10 sections".
pub const LIST_SECTIONS_MAX: usize = 10;
/// List: "up to 10 rows for all sections combined".
pub const LIST_ROWS_MAX: usize = 10;
/// `<ROW_ID>`: "Maximum 200 characters".
pub const ROW_ID_MAX: usize = 200;
/// `<ROW_TITLE_TEXT>`: "Maximum 24 characters".
pub const ROW_TITLE_MAX: usize = 24;
/// `<ROW_DESCRIPTION_TEXT>`: "Maximum 72 characters".
pub const ROW_DESCRIPTION_MAX: usize = 72;
/// `<SECTION_TITLE_TEXT>`: "Maximum 24 characters"; required when there is more than one section.
pub const SECTION_TITLE_MAX: usize = 24;

/// One section of an interactive `list` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// One row of a list section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

pub(super) fn validate_list(interactive: &Obj, path: &Path) -> Result<GraphContent, GraphError> {
    let frame = interactive_frame(interactive, path, LIST_BODY_MAX, true)?;

    let action_path = path.key("action");
    let action = req_obj(interactive, &action_path)?;

    let button_path = action_path.key("button");
    let button = req_str(action, &button_path)?;
    check_len(&button_path, button, 1, LIST_BUTTON_MAX)?;

    let sections_path = action_path.key("sections");
    let entries = req_array(action, &sections_path)?;
    if !(1..=LIST_SECTIONS_MAX).contains(&entries.len()) {
        return Err(GraphError::invalid_value(format!(
            "{sections_path} must contain between 1 and {LIST_SECTIONS_MAX} sections (got {})",
            entries.len()
        )));
    }

    // First pass: shapes and row counts, so the total is known before rows are read.
    let mut shaped = Vec::with_capacity(entries.len());
    let mut total_rows = 0;
    for (index, entry) in entries.iter().enumerate() {
        let section_path = sections_path.index(index);
        let section = expect_obj(entry, &section_path)?;
        let rows_path = section_path.key("rows");
        let rows = req_array(section, &rows_path)?;
        if rows.is_empty() {
            return Err(GraphError::invalid_value(format!("{rows_path} must contain at least 1 row (got 0)")));
        }
        total_rows += rows.len();
        shaped.push((section_path, section, rows_path, rows));
    }
    if total_rows > LIST_ROWS_MAX {
        return Err(GraphError::invalid_value(format!(
            "{sections_path} must contain at most {LIST_ROWS_MAX} rows across all sections (got {total_rows})"
        )));
    }

    let several = shaped.len() > 1;
    let mut sections = Vec::with_capacity(shaped.len());
    let mut seen_row_ids = Uniques::default();
    for (section_path, section, rows_path, rows) in shaped {
        let title_path = section_path.key("title");
        let title = opt_str(section, &title_path)?;
        match title {
            Some(title) => check_len(&title_path, title, 1, SECTION_TITLE_MAX)?,
            None if several => {
                return Err(GraphError::conditionally_missing(format!(
                    "{title_path} is required when a list has more than one section"
                )));
            }
            None => {}
        }

        let mut list_rows = Vec::with_capacity(rows.len());
        for (index, entry) in rows.iter().enumerate() {
            let row_path = rows_path.index(index);
            let row = expect_obj(entry, &row_path)?;

            let id_path = row_path.key("id");
            let id = req_str(row, &id_path)?;
            check_len(&id_path, id, 1, ROW_ID_MAX)?;
            seen_row_ids.insert(id, &id_path, "row ids")?;

            let title_path = row_path.key("title");
            let title = req_str(row, &title_path)?;
            check_len(&title_path, title, 1, ROW_TITLE_MAX)?;

            let description_path = row_path.key("description");
            let description = opt_str(row, &description_path)?;
            if let Some(description) = description {
                check_len(&description_path, description, 0, ROW_DESCRIPTION_MAX)?;
            }

            list_rows.push(ListRow {
                id: id.to_string(),
                title: title.to_string(),
                description: description.map(str::to_string),
            });
        }
        sections.push(ListSection { title: title.map(str::to_string), rows: list_rows });
    }

    Ok(GraphContent::List {
        header: frame.header,
        body: frame.body,
        footer: frame.footer,
        button: button.to_string(),
        sections,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::interactive::{FOOTER_TEXT_MAX, HEADER_TEXT_MAX};
    use crate::simulator::graph_rules::test_support::*;

    fn rows(count: usize, prefix: &str) -> Value {
        Value::Array((0..count).map(|i| json!({ "id": format!("{prefix}{i}"), "title": format!("R{i}") })).collect())
    }

    #[test]
    fn list_is_parsed() {
        assert_eq!(
            ok(&list_send()).content,
            GraphContent::List {
                header: Some("Header".into()),
                body: "Choose".into(),
                footer: Some("Footer".into()),
                button: "Options".into(),
                sections: vec![
                    ListSection {
                        title: Some("First".into()),
                        rows: vec![
                            ListRow { id: "a".into(), title: "A".into(), description: Some("Row A".into()) },
                            ListRow { id: "b".into(), title: "B".into(), description: None },
                        ],
                    },
                    ListSection {
                        title: Some("Second".into()),
                        rows: vec![ListRow { id: "c".into(), title: "C".into(), description: None }],
                    },
                ],
            }
        );
    }

    #[test]
    fn single_section_list_needs_no_title_and_header_footer_are_optional() {
        let body = send(
            "interactive",
            json!({ "type": "list", "body": { "text": "b" }, "action": { "button": "Go", "sections": [ { "rows": rows(1, "r") } ] } }),
        );
        let GraphContent::List { header, footer, sections, .. } = ok(&body).content else { panic!("not a list") };
        assert_eq!((header, footer), (None, None));
        assert_eq!(sections[0].title, None);
    }

    #[test]
    fn list_message_string_limits() {
        let base = list_send();
        let cases = [
            ("/interactive/body/text", LIST_BODY_MAX, "interactive.body.text"),
            ("/interactive/header/text", HEADER_TEXT_MAX, "interactive.header.text"),
            ("/interactive/footer/text", FOOTER_TEXT_MAX, "interactive.footer.text"),
            ("/interactive/action/button", LIST_BUTTON_MAX, "interactive.action.button"),
            ("/interactive/action/sections/1/title", SECTION_TITLE_MAX, "interactive.action.sections[1].title"),
            ("/interactive/action/sections/0/rows/1/id", ROW_ID_MAX, "interactive.action.sections[0].rows[1].id"),
            (
                "/interactive/action/sections/0/rows/1/title",
                ROW_TITLE_MAX,
                "interactive.action.sections[0].rows[1].title",
            ),
            (
                "/interactive/action/sections/0/rows/0/description",
                ROW_DESCRIPTION_MAX,
                "interactive.action.sections[0].rows[0].description",
            ),
        ];
        for (pointer, max, name) in cases {
            assert_string_limit(&base, pointer, max, name);
        }
    }

    #[test]
    fn list_counts() {
        // 10 sections of one row each: at both limits.
        let ten_sections: Vec<Value> = (0..LIST_SECTIONS_MAX)
            .map(|i| json!({ "title": format!("S{i}"), "rows": rows(1, &format!("s{i}r")) }))
            .collect();
        let mut body = list_send();
        set(&mut body, "/interactive/action/sections", Value::Array(ten_sections.clone()));
        ok(&body);

        let mut eleven = ten_sections;
        eleven.push(json!({ "title": "S10", "rows": rows(1, "s10r") }));
        set(&mut body, "/interactive/action/sections", Value::Array(eleven));
        expect(&body, VALUE, "interactive.action.sections must contain between 1 and 10 sections (got 11)");

        set(&mut body, "/interactive/action/sections", json!([]));
        expect(&body, VALUE, "interactive.action.sections must contain between 1 and 10 sections (got 0)");

        // 10 rows across sections pass, 11 fail.
        set(
            &mut body,
            "/interactive/action/sections",
            json!([{ "title": "A", "rows": rows(6, "a") }, { "title": "B", "rows": rows(4, "b") }]),
        );
        ok(&body);
        set(
            &mut body,
            "/interactive/action/sections",
            json!([{ "title": "A", "rows": rows(6, "a") }, { "title": "B", "rows": rows(5, "b") }]),
        );
        expect(&body, VALUE, "interactive.action.sections must contain at most 10 rows across all sections (got 11)");
        set(&mut body, "/interactive/action/sections", json!([{ "rows": rows(11, "a") }]));
        expect(&body, VALUE, "(got 11)");
    }

    #[test]
    fn list_errors() {
        let cases: Vec<(&str, Value, i64, &str)> = vec![
            (
                "/interactive/action/button",
                json!(""),
                VALUE,
                "interactive.action.button must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/button",
                json!(["Go"]),
                INVALID,
                "interactive.action.button must be a string (got an array)",
            ),
            (
                "/interactive/action/sections",
                json!({}),
                INVALID,
                "interactive.action.sections must be an array (got a JSON object)",
            ),
            (
                "/interactive/action/sections/0",
                json!([]),
                INVALID,
                "interactive.action.sections[0] must be a JSON object (got an array)",
            ),
            (
                "/interactive/action/sections/0/rows",
                json!([]),
                VALUE,
                "interactive.action.sections[0].rows must contain at least 1 row (got 0)",
            ),
            (
                "/interactive/action/sections/0/rows",
                json!("a"),
                INVALID,
                "interactive.action.sections[0].rows must be an array (got a string)",
            ),
            (
                "/interactive/action/sections/0/rows/0",
                json!(1),
                INVALID,
                "interactive.action.sections[0].rows[0] must be a JSON object (got a number)",
            ),
            (
                "/interactive/action/sections/0/rows/0/id",
                json!(""),
                VALUE,
                "interactive.action.sections[0].rows[0].id must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/1/rows/0/id",
                json!("a"),
                VALUE,
                "interactive.action.sections[1].rows[0].id duplicates interactive.action.sections[0].rows[0].id (\"a\"); row ids must be unique",
            ),
            (
                "/interactive/action/sections/0/rows/1/id",
                json!("a"),
                VALUE,
                "interactive.action.sections[0].rows[1].id duplicates interactive.action.sections[0].rows[0].id",
            ),
            (
                "/interactive/action/sections/0/rows/0/title",
                json!(""),
                VALUE,
                "interactive.action.sections[0].rows[0].title must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/0/rows/0/description",
                json!(false),
                INVALID,
                "interactive.action.sections[0].rows[0].description must be a string (got a boolean)",
            ),
            (
                "/interactive/action/sections/0/title",
                json!(""),
                VALUE,
                "interactive.action.sections[0].title must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/0/title",
                json!(1),
                INVALID,
                "interactive.action.sections[0].title must be a string (got a number)",
            ),
            (
                "/interactive/action/sections/1/title",
                json!(null),
                MISSING,
                "interactive.action.sections[1].title is required when a list has more than one section",
            ),
            (
                "/interactive/header/type",
                json!("image"),
                VALUE,
                "interactive.header.type must be \"text\": list messages support text headers only (got \"image\")",
            ),
            ("/interactive/body/text", json!(""), VALUE, "interactive.body.text must be at least 1 character (got 0)"),
        ];
        for (pointer, value, code, needle) in cases {
            let mut body = list_send();
            set(&mut body, pointer, value);
            expect(&body, code, needle);
        }

        let removals: Vec<(&str, i64, &str)> = vec![
            ("/interactive/action/button", INVALID, "interactive.action.button is required"),
            ("/interactive/action/sections", INVALID, "interactive.action.sections is required"),
            ("/interactive/action/sections/0/rows", INVALID, "interactive.action.sections[0].rows is required"),
            (
                "/interactive/action/sections/0/rows/0/id",
                INVALID,
                "interactive.action.sections[0].rows[0].id is required",
            ),
            (
                "/interactive/action/sections/0/rows/0/title",
                INVALID,
                "interactive.action.sections[0].rows[0].title is required",
            ),
            (
                "/interactive/action/sections/0/title",
                MISSING,
                "interactive.action.sections[0].title is required when a list has more than one section",
            ),
        ];
        for (pointer, code, needle) in removals {
            let mut body = list_send();
            remove(&mut body, pointer);
            expect(&body, code, needle);
        }
        let mut no_description = list_send();
        remove(&mut no_description, "/interactive/action/sections/0/rows/0/description");
        ok(&no_description);
    }
}
