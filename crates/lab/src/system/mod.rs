//! Systems in the lab: the description a scenario picks with `[nodes]
//! system` (or `splitlab run --system`), resolved with its options; the
//! descriptions themselves (parse, templates, built-ins) are
//! `client::system`, shared with the benches.
#[cfg(test)]
mod redis_tests;
mod resolve;
#[cfg(test)]
mod tests;

pub use client::system::{BUILTIN_SYSTEMS, MemberContext, System, find_system, parse_description};
pub use resolve::{client_addr, companion_specs, member_spec, resolve};
/// Replaces the results of the checks a system cannot be judged on with
/// `not_applicable` (the reason names the system) and merges the verdict
/// again, so they never count for or against it.
pub fn mark_not_applicable(
    report: &mut checker::Report,
    not_applicable: &std::collections::BTreeMap<String, String>,
) {
    if not_applicable.is_empty() {
        return;
    }
    let results = std::mem::take(&mut report.results)
        .into_iter()
        .map(|result| match not_applicable.get(&result.name) {
            Some(why) => checker::CheckResult::not_applicable(&result.name, why.clone()),
            None => result,
        })
        .collect();
    *report = checker::Report::from_results(results);
}
