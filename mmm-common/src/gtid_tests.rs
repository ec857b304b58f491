//! Unit and property tests of `gtid`.

use super::*;
use proptest::prelude::*;

const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const B: &str = "2174b383-5441-11e8-b90a-c80aa9429562";

fn p(s: &str) -> GtidSet {
    GtidSet::parse(s).unwrap()
}

#[test]
fn both_families_parse_and_bad_text_is_named() {
    assert_eq!(p(""), GtidSet::Maria(vec![]));
    assert_eq!(
        p("0-1-100, 1-2-5"),
        GtidSet::Maria(vec![
            MariaGtid {
                domain: 0,
                server: 1,
                seq: 100
            },
            MariaGtid {
                domain: 1,
                server: 2,
                seq: 5
            }
        ])
    );
    // MySQL prints sources upper or lower case and folds long sets over lines.
    let m = p(&format!("{}:1-5:7:6,\n{B}:3", A.to_uppercase()));
    let GtidSet::Mysql(m) = m else {
        panic!("{m:?}")
    };
    assert_eq!(m[A], vec![(1, 7)]);
    assert_eq!(m[B], vec![(3, 3)]);
    // MySQL 8.4 tags apply to the intervals after them.
    let GtidSet::Mysql(t) = p(&format!("{A}:1-3:blue:1-2")) else {
        panic!()
    };
    assert_eq!(t[&format!("{A}:blue")], vec![(1, 2)]);
    for bad in [
        "0-1",
        "0-1-x",
        "0-1-2-3",
        "nope:1-2",
        &format!("{A}:5-2"),
        &format!("{A}:0"),
        A,
        &format!("0-1-2,{A}:1"),
    ] {
        let e = GtidSet::parse(bad).unwrap_err();
        assert_eq!(e.text, bad);
    }
}

#[test]
fn a_candidate_lacking_the_writers_last_transactions_is_counted_behind() {
    let writer = p("0-1-1500,0-2-90");
    // The candidate's IO thread received up to 0-1-464: 1,036 transactions short.
    assert_eq!(writer.missing_from(&p("0-1-464")), Some(1036));
    assert_eq!(writer.missing_from(&p("0-1-1500")), Some(0));
    // Ahead (what the writer reported a moment earlier) is not behind.
    assert_eq!(writer.missing_from(&p("0-1-1600")), Some(0));
    assert_eq!(writer.missing_from(&p("")), Some(1500));
    let w = p(&format!("{A}:1-100,{B}:1-10"));
    assert_eq!(w.missing_from(&p(&format!("{A}:1-90:95-100"))), Some(14));
    assert_eq!(w.missing_from(&p("0-1-5")), None);
}

#[test]
fn errant_transactions_are_named_and_the_writers_own_newest_are_not() {
    let writer = p("0-1-2400,0-2-9000");
    // db1 (server 1) committed 0-1-2470 that the writer (server 2) never had; its copy of
    // the writer's newest (0-2-9100, received after the writer's report) is not errant.
    let host = p("0-1-2470,0-2-9100");
    let e = host.errant_against(&writer, "2").unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("0-1-2470") && e[0].contains("0-1-2400"),
        "{e:?}"
    );
    assert_eq!(
        p("0-1-2400,0-2-9100").errant_against(&writer, "2"),
        Some(vec![])
    );
    assert_eq!(
        p("0-3-7").errant_against(&writer, "2"),
        Some(vec!["0-3-7".to_string()])
    );
    let w = p(&format!("{A}:1-100,{B}:1-10"));
    let h = p(&format!("{A}:1-120,{B}:1-12"));
    assert_eq!(h.errant_against(&w, B), Some(vec![format!("{A}:101-120")]));
    assert_eq!(h.errant_against(&p("0-1-1"), B), None);
}

#[test]
fn union_joins_within_a_family_only() {
    assert_eq!(p("0-1-5").union(&p("1-1-7")), Some(p("0-1-5,1-1-7")));
    assert_eq!(
        p(&format!("{A}:1-5")).union(&p(&format!("{A}:6-9"))),
        Some(p(&format!("{A}:1-9")))
    );
    assert_eq!(
        p("").union(&p(&format!("{A}:1"))),
        Some(p(&format!("{A}:1")))
    );
    assert_eq!(p("0-1-5").union(&p(&format!("{A}:1"))), None);
}

fn intervals() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((1u64..200, 0u64..20), 0..6)
        .prop_map(|v| v.into_iter().map(|(a, l)| (a, a + l)).collect())
}

fn members(v: &[(u64, u64)]) -> std::collections::BTreeSet<u64> {
    v.iter().flat_map(|&(a, b)| a..=b).collect()
}

proptest! {
    /// MySQL set arithmetic against the naive model of explicit members.
    #[test]
    fn mysql_difference_matches_the_member_model(a in intervals(), b in intervals()) {
        let text = |v: &[(u64, u64)]| {
            v.iter().map(|(x, y)| format!("{A}:{x}-{y}")).collect::<Vec<_>>().join(",")
        };
        let (sa, sb) = (p(&text(&a)), p(&text(&b)));
        let want = members(&a).difference(&members(&b)).count() as u64;
        prop_assert_eq!(sa.missing_from(&sb), Some(want));
        let u = sa.union(&sb).unwrap();
        prop_assert_eq!(u.missing_from(&sa).unwrap() + sa.missing_from(&p("")).unwrap(),
            members(&a).union(&members(&b)).count() as u64);
        let errant = sa.errant_against(&sb, B).unwrap();
        prop_assert_eq!(errant.is_empty(), want == 0);
    }
}
