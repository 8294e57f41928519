#include "roles/operator/monitor_tui.hpp"

#include <algorithm>
#include <clocale>
#include <csignal>
#include <string_view>

#include <curses.h>
#include <langinfo.h>

#include "core/exit_codes.hpp"
#include "roles/operator/monitor_feed.hpp"

namespace swarm::roles::operator_cli::monitor {

namespace {

volatile std::sig_atomic_t g_monitor_stop = 0;

void on_stop_signal(int)
{
  g_monitor_stop = 1;
}

// endwin() however the screen's scope is left (an exception included).
struct Screen {
  Screen()
  {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(250); // getch waits at most this long, so the screen follows the feed
    if (has_colors()) {
      start_color();
      use_default_colors();
      init_pair(1, COLOR_GREEN, -1);
      init_pair(2, COLOR_YELLOW, -1);
      init_pair(3, COLOR_RED, -1);
    }
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
};

attr_t attributes_of(Color color)
{
  switch (color) {
  case Color::good:
    return COLOR_PAIR(1);
  case Color::warn:
    return COLOR_PAIR(2);
  case Color::bad:
    return COLOR_PAIR(3) | A_BOLD;
  case Color::dim:
    return A_DIM;
  case Color::title:
    return A_BOLD;
  case Color::normal:
    break;
  }
  return A_NORMAL;
}

// Without a UTF-8 locale the ellipsis is painted as '~' (one column either way).
std::string for_terminal(const std::string& text, bool utf8)
{
  if (utf8) {
    return text;
  }
  constexpr std::string_view ellipsis = "\xE2\x80\xA6";
  std::string out;
  for (size_t at = 0; at < text.size();) {
    if (std::string_view(text).substr(at, ellipsis.size()) == ellipsis) {
      out += '~';
      at += ellipsis.size();
    } else {
      out += text[at++];
    }
  }
  return out;
}

void paint(const std::vector<Line>& lines, bool utf8)
{
  erase();
  for (size_t y = 0; y < lines.size(); ++y) {
    move(static_cast<int>(y), 0);
    for (const auto& span : lines[y]) {
      const auto attributes = attributes_of(span.color);
      attron(attributes);
      addstr(for_terminal(span.text, utf8).c_str());
      attroff(attributes);
    }
  }
  refresh();
}

} // namespace

int run_tui(Feed& feed)
{
  std::setlocale(LC_ALL, "");
  const bool utf8 = std::string_view(nl_langinfo(CODESET)) == "UTF-8";
  g_monitor_stop = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    std::signal(sig, on_stop_signal);
  }
  Screen screen;
  std::string message;
  bool failed = false, confirming = false;
  while (g_monitor_stop == 0) {
    feed.poll();
    auto model = feed.model();
    model.message = message;
    model.message_color = confirming ? Color::warn : failed ? Color::bad : Color::normal;
    paint(layout(model, static_cast<size_t>(std::max(COLS, 1)), static_cast<size_t>(std::max(LINES, 1)), true), utf8);
    const int key = getch();
    if (key == ERR || key == KEY_RESIZE) {
      continue; // a resize: ncurses has the new size, the next paint uses it
    }
    Feed::Outcome outcome;
    if (confirming) {
      confirming = false;
      outcome = key == 'y' || key == 'Y' ? feed.reset() : Feed::Outcome{"reset cancelled", false};
    } else if (key == 'q' || key == 'Q') {
      break;
    } else if (key == 'b') {
      outcome = feed.balance();
    } else if (key == 'u') {
      outcome = feed.unblock_all();
    } else if (key == 'p') {
      outcome = feed.pause_or_resume();
    } else if (key == 'R') {
      confirming = true;
      outcome = {"Reset: return all in-flight work to the queue (running builds stop)? y/n", false};
    } else {
      continue;
    }
    message = outcome.message;
    failed = outcome.failed;
  }
  return exit_code::k_ok;
}

} // namespace swarm::roles::operator_cli::monitor
