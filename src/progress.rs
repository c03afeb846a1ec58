//! A one-line progress bar on stderr for the long phases of `audit`
//! (resolve, fetch, build N/M, scan). It draws only when both stdout and
//! stderr are terminals: piped or redirected output stays free of carriage
//! returns, and a log file never fills with redraws.

use std::io::{IsTerminal, Write};

/// Widest line drawn (the terminal's width is not queried; narrower
/// terminals wrap, which `\r` plus clear-line still cleans up).
const WIDTH: usize = 78;

/// The progress line.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// A bar that draws only when stdout and stderr are terminals.
    pub fn for_terminal() -> Progress {
        Progress::new(std::io::stdout().is_terminal() && std::io::stderr().is_terminal())
    }

    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            drawn: false,
        }
    }

    /// Whether anything is drawn (callers quieten cargo's own output then).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A phase without a count: `resolve widget@1.0.1`.
    pub fn phase(&mut self, label: &str) {
        self.draw(label.to_string());
    }

    /// A counted step: `build [#####.....] 3/12 widget-derive`.
    pub fn step(&mut self, label: &str, done: usize, total: usize, item: &str) {
        let total = total.max(done).max(1);
        let slots = 20;
        let filled = done * slots / total;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(slots - filled));
        self.draw(format!("{label} [{bar}] {done}/{total} {item}"));
    }

    /// Removes the line (before printing anything else).
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }

    fn draw(&mut self, text: String) {
        if !self.enabled {
            return;
        }
        // Crate names come from crates: no control characters, one line.
        let text: String = crate::report::human::clean(&text)
            .chars()
            .take(WIDTH)
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
