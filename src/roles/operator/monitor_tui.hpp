#pragma once
// The full-screen `swarm monitor` (ncurses): paints monitor::layout() of the feed's model about
// every second and on resize, and maps keys to the feed's actions: q quit, b balance, u unblock
// all, p pause/resume, R reset (after y/n). The only file that includes curses.h.

namespace swarm::roles::operator_cli::monitor {

class Feed;

// Runs until `q` (or SIGINT/SIGTERM/SIGHUP); the terminal is restored however it ends. Exit code 0.
int run_tui(Feed& feed);

} // namespace swarm::roles::operator_cli::monitor
