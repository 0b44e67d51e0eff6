//! Replays the fuzzing corpus (`fuzz/corpus/<target>/`, kept by cargo-fuzz
//! and minimised) through the same checks the fuzz targets run
//! (`fuzz/checks.rs`), so an ordinary `cargo test` exercises every input
//! the fuzzer found interesting, without cargo-fuzz or nightly. Also checks
//! the hand-made seeds, which `write_seeds` (ignored) writes into the
//! corpus.

#[path = "../../fuzz/checks.rs"]
mod checks;
#[path = "../../fuzz/replay.rs"]
mod replay;

use litecloud::serial;
use litecloud::wire::{Class, Frame, Header, Item};

#[test]
fn frame_decode_corpus() {
    replay::replay("frame_decode", checks::frame_decode);
}

#[test]
fn serial_deframe_corpus() {
    replay::replay("serial_deframe", checks::serial_deframe);
}

fn header() -> Header {
    Header {
        class: Class::Heartbeat,
        netid: checks::NETID,
        sender: 1,
        dest: 2,
        path: 0,
        boot: 0xdead_beef,
        incarnation: 3,
        seq: 42,
        ack: 41,
        ack_incarnation: 5,
        ack_delay: 12,
        config_hash: 0x0102_0304,
    }
}

/// The hand-made seeds: (target, name, bytes).
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let key = checks::key();
    let heartbeat = Frame::new(header()).encode(&key);
    let mut with_items = Frame::new(Header {
        class: Class::Normal,
        dest: 0,
        ..header()
    });
    with_items.items = vec![
        Item::Challenge(0x0123_4567_89ab_cdef),
        Item::Response(7),
        Item::Unknown {
            kind: 0x21,
            data: vec![1, 2, 3],
        },
        Item::Leave,
    ];
    let with_items = with_items.encode(&key);
    let mut critical = Frame::new(header());
    critical.items = vec![Item::Unknown {
        kind: 0x90,
        data: vec![0; 5],
    }];
    let critical = critical.encode(&key);
    // Serial: chunk seed byte, a frame, noise ended by a delimiter, a frame
    // with items, half a frame.
    let mut line = vec![0x5a];
    line.extend(serial::encode(&heartbeat));
    line.extend([0x55, 0xaa, 0x13, 0x00]);
    line.extend(serial::encode(&with_items));
    let half = serial::encode(&heartbeat);
    line.extend(&half[..half.len() / 2]);
    let mut zeros = vec![3u8];
    zeros.extend(serial::encode(&[0u8; 300]));
    vec![
        ("frame_decode", "seed-heartbeat", heartbeat.clone()),
        ("frame_decode", "seed-items", with_items.clone()),
        ("frame_decode", "seed-critical-item", critical),
        ("frame_decode", "seed-truncated", heartbeat[..30].to_vec()),
        ("serial_deframe", "seed-line", line),
        ("serial_deframe", "seed-zeros", zeros),
    ]
}

#[test]
fn hand_made_seeds_pass_the_checks() {
    for (target, name, bytes) in seeds() {
        match target {
            "frame_decode" => checks::frame_decode(&bytes),
            _ => checks::serial_deframe(&bytes),
        }
        let file = replay::corpus_dir(target).join(name);
        if file.exists() {
            assert_eq!(
                std::fs::read(&file).unwrap(),
                bytes,
                "{} is stale",
                file.display()
            );
        }
    }
}

/// Writes the hand-made seeds into the corpus:
/// `cargo test -p litecloud --test fuzz_corpus write_seeds -- --ignored`.
#[test]
#[ignore = "writes files: run by hand to refresh the seeds"]
fn write_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = replay::corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
