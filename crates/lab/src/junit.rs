//! The JUnit XML file of a batch run (`splitlab run --junit FILE`), the
//! format CI systems display: one testcase per scenario; a failure carries
//! the broken checks and the report path. Written with `quick-xml`, which
//! does the escaping.
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::batch::{BatchSummary, Outcome, ScenarioSummary};

type XmlWriter = Writer<Vec<u8>>;

/// The JUnit document for `summary`.
pub fn render(summary: &BatchSummary) -> anyhow::Result<String> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let tests = summary.scenarios.len().to_string();
    let errors = count(summary, Outcome::Error).to_string();
    // Under --strict a skipped scenario is reported as a failure, so CI
    // shows it red exactly when the batch fails for it.
    let failures = (count(summary, Outcome::Failed)
        + if summary.strict {
            count(summary, Outcome::Skipped)
        } else {
            0
        })
    .to_string();
    let skipped = if summary.strict {
        0
    } else {
        count(summary, Outcome::Skipped)
    }
    .to_string();
    let time = format!(
        "{:.3}",
        summary.scenarios.iter().map(|r| r.duration_s).sum::<f64>()
    );
    let counts = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("skipped", skipped.as_str()),
        ("time", time.as_str()),
    ];
    writer
        .create_element("testsuites")
        .with_attribute(("name", "splitlab"))
        .with_attributes(counts)
        .write_inner_content(|writer| {
            writer
                .create_element("testsuite")
                .with_attribute(("name", "splitlab scenarios"))
                .with_attributes(counts)
                .write_inner_content(|writer| {
                    for row in &summary.scenarios {
                        testcase(writer, row, summary.strict)?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(String::from_utf8(writer.into_inner())? + "\n")
}

fn count(summary: &BatchSummary, outcome: Outcome) -> usize {
    summary
        .scenarios
        .iter()
        .filter(|row| row.outcome == outcome)
        .count()
}

/// `classname`: the scenario's directory as dotted words
/// (`lab/scenarios/museum/x.toml` → `scenarios.museum`).
fn classname(row: &ScenarioSummary) -> String {
    let words: Vec<String> = row
        .file
        .parent()
        .into_iter()
        .flat_map(|dir| dir.components())
        .filter_map(|part| match part {
            std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .filter(|word| word != "lab")
        .collect();
    if words.is_empty() {
        "scenarios".into()
    } else {
        words.join(".")
    }
}

/// The body of a failure: why, the broken checks, where the report is.
fn failure_text(row: &ScenarioSummary) -> String {
    let mut text = format!(
        "{}\nexpected: {}\nverdict: {}\n",
        row.detail, row.expected, row.verdict
    );
    for check in &row.broken_checks {
        text += &format!("broken check: {check}\n");
    }
    if let Some(report) = row.report() {
        text += &format!("report: {}\n", report.display());
    }
    text
}

fn testcase(writer: &mut XmlWriter, row: &ScenarioSummary, strict: bool) -> std::io::Result<()> {
    let time = format!("{:.3}", row.duration_s);
    let file = row.file.display().to_string();
    let classname = classname(row);
    let element = writer.create_element("testcase").with_attributes([
        ("name", row.scenario.as_str()),
        ("classname", classname.as_str()),
        ("file", file.as_str()),
        ("time", time.as_str()),
    ]);
    let (tag, kind) = match (row.outcome, strict) {
        (Outcome::Passed, _) => ("", ""),
        (Outcome::Failed, _) => ("failure", "expectation"),
        (Outcome::Skipped, true) => ("failure", "skipped"),
        (Outcome::Skipped, false) => ("skipped", ""),
        (Outcome::Error, _) => ("error", "no-results"),
    };
    let report = row
        .report()
        .map(|path| format!("report: {}\n", path.display()));
    element.write_inner_content(|writer| {
        match tag {
            "" => {}
            "skipped" => {
                writer
                    .create_element("skipped")
                    .with_attribute(("message", row.detail.as_str()))
                    .write_empty()?;
            }
            _ => {
                let message = first_line(&row.detail);
                writer
                    .create_element(tag)
                    .with_attributes([("message", message), ("type", kind)])
                    .write_text_content(BytesText::new(&failure_text(row)))?;
            }
        }
        if let Some(report) = &report {
            writer
                .create_element("system-out")
                .write_text_content(BytesText::new(report))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::aggregate;
    use crate::batch::tests::row;

    #[test]
    fn one_testcase_per_scenario_with_escaped_failures() {
        let mut failed = row("no-fencing", Outcome::Failed, Some(false));
        failed.file = "lab/scenarios/museum/no-fencing.toml".into();
        failed.detail = "expected invalid with <no_lost_writes> & co".into();
        failed.broken_checks = vec!["no_lost_writes: key \"k\" lost".into()];
        let summary = aggregate(
            vec![
                row("a", Outcome::Passed, Some(true)),
                failed,
                row("b", Outcome::Skipped, None),
            ],
            false,
        );
        let xml = render(&summary).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("classname=\"scenarios.museum\""), "{xml}");
        assert!(xml.contains("&lt;no_lost_writes&gt; &amp; co"), "{xml}");
        assert!(xml.contains("broken check: no_lost_writes: key"), "{xml}");
        assert!(
            xml.contains("report: runs/x-no-fencing/report.html"),
            "{xml}"
        );
        assert!(xml.contains("<skipped message="), "{xml}");
        let strict = render(&aggregate(summary.scenarios, true)).unwrap();
        assert!(strict.contains("failures=\"2\""), "{strict}");
        assert!(strict.contains("type=\"skipped\""), "{strict}");
    }
}
