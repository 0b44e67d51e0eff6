//! `hactl fence confirm NODE`: the operator swears NODE is powered off, so
//! that hamond lets the services it held be taken over (safety rule 1).
//! A false oath starts them twice and can corrupt shared data, so it takes
//! `--yes-i-am-sure` or the node's name typed back on a terminal.
//!
//! `hactl fence test [DEVICE]`: hamond runs the `monitor` action of one or
//! every fencing device now; the results are printed by
//! [`crate::show::device_checks`].

use clap::Subcommand;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum FenceCommand {
    /// Swear NODE is powered off: the services it held may then be taken
    /// over by the other nodes. Asks to type NODE back on a terminal.
    Confirm {
        /// The node that is off.
        node: String,
        /// Do not ask: you checked that NODE is powered off (for scripts).
        #[arg(long)]
        yes_i_am_sure: bool,
    },
    /// Check that the fencing devices answer (their `monitor` action), now.
    /// Exit code: 0 when every device checked answers, 1 otherwise.
    Test {
        /// The device (its `[[fence]]` name); every device if left out.
        device: Option<String>,
    },
}

/// Why confirming a node off needs an oath.
fn danger(node: &str) -> String {
    format!(
        "confirming {node} off lets the other nodes take over the services it held; \
         if {node} is in fact still running them, they run twice and shared data can be corrupted"
    )
}

/// Ok when the operator confirmed (flag or name typed back), else why not.
pub fn confirmed(node: &str, yes_i_am_sure: bool) -> Result<(), String> {
    if yes_i_am_sure {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(format!(
            "refusing without a terminal: {}. Check that {node} is powered off, then run again \
             with --yes-i-am-sure (or on a terminal, to type its name back)",
            danger(node)
        ));
    }
    eprint!(
        "WARNING: {}.\nType the node's name ({node}) to confirm it is powered off: ",
        danger(node)
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the confirmation: {e}"))?;
    if line.trim() == node {
        Ok(())
    } else {
        Err(format!(
            "not confirmed (typed {:?}); nothing sent",
            line.trim()
        ))
    }
}
