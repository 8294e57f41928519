#include "portage/dep_string.hpp"

#include "portage/eapi.hpp"

namespace swarm::portage {

namespace {

// Python str.split(): runs of ASCII whitespace separate tokens.
std::vector<std::string_view> split_tokens(std::string_view text)
{
  std::vector<std::string_view> out;
  size_t i = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) {
      ++i;
    }
    const size_t start = i;
    while (i < text.size() && !is_space(text[i])) {
      ++i;
    }
    if (i > start) {
      out.push_back(text.substr(start, i - start));
    }
  }
  return out;
}

DepElement token_element(std::string_view token)
{
  DepElement element;
  element.token = std::string(token);
  return element;
}

DepElement group_element(DepList items)
{
  DepElement element;
  element.is_group = true;
  element.items = std::move(items);
  return element;
}

bool is_token(const DepElement& element, std::string_view token)
{
  return !element.is_group && element.token == token;
}

// A string token ending in '?' (a USE conditional).
bool is_conditional(const DepElement& element)
{
  return !element.is_group && !element.token.empty() && element.token.back() == '?';
}

// Python's `x[-1] == "?"` on a paren_reduce element: a token's last character, or a group's
// last element being the token "?".
bool last_is_question_mark(const DepElement& element)
{
  if (!element.is_group) {
    return !element.token.empty() && element.token.back() == '?';
  }
  return !element.items.empty() && is_token(element.items.back(), "?");
}

bool is_dep_use_flag(std::string_view text)
{
  auto alnum = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (text.empty() || !alnum(text.front())) {
    return false;
  }
  for (const char c : text.substr(1)) {
    if (!alnum(c) && c != '+' && c != '_' && c != '@' && c != '-') {
      return false;
    }
  }
  return true;
}

std::unexpected<Error> invalid(std::string message)
{
  return std::unexpected(Error{ErrorKind::invalid, std::move(message)});
}

void append(DepList& to, DepList from)
{
  for (auto& element : from) {
    to.push_back(std::move(element));
  }
}

class UseReducer {
public:
  explicit UseReducer(const UseReduceOptions& options)
      : m_options(options),
        m_eapi(eapi_attributes(options.eapi ? std::optional<std::string_view>(*options.eapi) : std::nullopt))
  {}

  Result<DepList> run(std::string_view depstr);
  Result<bool> is_active(std::string_view conditional) const;
  Result<DepList> select_subset(const DepList& list, bool disjunction, bool selected) const;

private:
  Result<> close_group(size_t position);
  Result<DepElement> make_token(std::string_view token, size_t position) const;

  bool ends_in_any_of(long level) const
  {
    return level >= 0 && !m_stack[static_cast<size_t>(level)].empty() &&
           is_token(m_stack[static_cast<size_t>(level)].back(), "||");
  }

  // The level of the last "||" still in effect for `level`: empty levels and levels ending in a
  // group are skipped, a level ending in any other non-conditional token stops the search.
  long last_any_of_operator_level(long level) const
  {
    while (level >= 0) {
      const auto& list = m_stack[static_cast<size_t>(level)];
      if (!list.empty() && !list.back().is_group) {
        if (list.back().token == "||") {
          return level;
        }
        if (list.back().token.back() != '?') {
          return -1;
        }
      }
      --level;
    }
    return -1;
  }

  const UseReduceOptions& m_options;
  EapiAttributes m_eapi;
  std::vector<DepList> m_stack;
};

Result<bool> UseReducer::is_active(std::string_view conditional) const
{
  const bool negated = conditional.starts_with('!');
  const auto flag =
    negated ? conditional.substr(1, conditional.size() - 2) : conditional.substr(0, conditional.size() - 1);
  if (m_options.is_valid_flag) {
    if (!m_options.is_valid_flag(flag)) {
      return invalid(fmt::format("USE flag '{}' referenced in conditional '{}' is not in IUSE", flag, conditional));
    }
  } else if (!is_dep_use_flag(flag)) {
    return invalid(fmt::format("invalid use flag '{}' in conditional '{}'", flag, conditional));
  }
  if (negated && m_options.exclude_all.contains(flag)) {
    return false;
  }
  if (m_options.mask.contains(flag)) {
    return negated;
  }
  if (m_options.match_all) {
    return true;
  }
  if (m_options.match_none) {
    return false;
  }
  return m_options.use.contains(flag) != negated;
}

Result<DepList> UseReducer::select_subset(const DepList& list, bool disjunction, bool selected) const
{
  DepList result;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& element = list[i];
    if (element.is_group) {
      auto children = select_subset(element.items, false, selected);
      if (!children) {
        return children;
      }
      if (disjunction) {
        if (!children->empty()) {
          result.push_back(group_element(std::move(*children)));
        }
      } else {
        append(result, std::move(*children));
      }
    } else if (is_conditional(element)) {
      if (i + 1 >= list.size()) {
        break;
      }
      const auto& children_list = list[++i].items;
      auto active = is_active(element.token);
      if (!active) {
        return std::unexpected(active.error());
      }
      if (*active) {
        const auto flag = std::string_view(element.token).substr(0, element.token.size() - 1);
        const bool now_selected = selected || m_options.subset->contains(flag);
        auto children = select_subset(children_list, false, now_selected);
        if (!children) {
          return children;
        }
        if (disjunction) {
          if (!children->empty()) {
            result.push_back(group_element(std::move(*children)));
          }
        } else {
          append(result, std::move(*children));
        }
      }
    } else if (element.token == "||") {
      if (i + 1 >= list.size()) {
        break;
      }
      auto children = select_subset(list[++i].items, true, selected);
      if (!children) {
        return children;
      }
      if (!children->empty()) {
        if (disjunction) {
          append(result, std::move(*children));
        } else {
          result.push_back(element);
          result.push_back(group_element(std::move(*children)));
        }
      }
    } else if (selected) {
      result.push_back(element);
    }
  }
  return result;
}

Result<DepElement> UseReducer::make_token(std::string_view token, size_t position) const
{
  auto element = token_element(token);
  if (m_options.token_class != TokenClass::atom) {
    return element;
  }
  AtomOptions atom_options;
  atom_options.eapi = m_options.eapi;
  atom_options.is_valid_flag = m_options.is_valid_flag;
  auto atom = parse_atom(token, atom_options);
  if (!atom) {
    for (const std::string_view marker : {")", "(", "||"}) {
      if (token.starts_with(marker) || token.ends_with(marker)) {
        return invalid(fmt::format("missing whitespace around '{}' at '{}', token {}", marker, token, position + 1));
      }
    }
    return invalid(fmt::format("Invalid atom ({}), token {}", atom.error().message, position + 1));
  }
  if (!m_options.match_all && atom->has_use_conditionals()) {
    *atom = atom->evaluate_conditionals(m_options.use);
  }
  element.token = atom->text;
  element.atom = std::make_shared<const Atom>(std::move(*atom));
  return element;
}

Result<> UseReducer::close_group(size_t position)
{
  auto l = std::move(m_stack.back());
  m_stack.pop_back();
  const long level = static_cast<long>(m_stack.size()) - 1;
  auto& parent = m_stack.back();
  const bool opconvert = m_options.opconvert;

  const bool starts_with_any_of = !l.empty() && is_token(l.front(), "||");
  const bool is_single =
    l.size() == 1 || (opconvert && starts_with_any_of) || (!opconvert && l.size() == 2 && starts_with_any_of);
  bool ignore = false;

  if (m_options.flat) {
    // Everything merges into one list; a conditional before the group only decides whether.
    if (!parent.empty() && is_conditional(parent.back())) {
      auto active = is_active(parent.back().token);
      if (!active) {
        return std::unexpected(active.error());
      }
      parent.pop_back();
      if (*active) {
        append(parent, std::move(l));
      }
    } else {
      append(parent, std::move(l));
    }
    return {};
  }

  if (!parent.empty() && !parent.back().is_group) {
    if (parent.back().token == "||" && l.empty()) {
      // `|| ( )` after reduction: satisfied in EAPI <= 6, a never-satisfied marker from 7 on.
      if (!m_eapi.empty_groups_always_true) {
        auto marker = make_token("__const__/empty-any-of", position);
        if (!marker) {
          return std::unexpected(marker.error());
        }
        l.push_back(std::move(*marker));
      }
      parent.pop_back();
    } else if (parent.back().token.back() == '?') {
      auto active = is_active(parent.back().token);
      if (!active) {
        return std::unexpected(active.error());
      }
      ignore = !*active;
      parent.pop_back();
    }
  }

  // Use extend instead of append where possible: this kills all redundant brackets.
  auto special_append = [&]() {
    if (is_single) {
      if (is_token(l.front(), "||") && ends_in_any_of(level - 1)) {
        if (opconvert) {
          for (size_t i = 1; i < l.size(); ++i) {
            parent.push_back(std::move(l[i]));
          }
        } else {
          append(parent, std::move(l[1].items));
        }
      } else if (l.size() == 1 && l.front().is_group) {
        auto& inner = l.front();
        const bool inner_any_of = opconvert && !inner.items.empty() && is_token(inner.items.front(), "||");
        if (last_any_of_operator_level(level - 1) == -1) {
          if (inner_any_of) {
            parent.push_back(std::move(inner));
          } else {
            append(parent, std::move(inner.items));
          }
        } else {
          if (inner_any_of) {
            for (size_t i = 1; i < inner.items.size(); ++i) {
              parent.push_back(std::move(inner.items[i]));
            }
          } else {
            parent.push_back(std::move(inner));
          }
        }
      } else {
        append(parent, std::move(l));
      }
    } else {
      if (opconvert && !parent.empty() && is_token(parent.back(), "||")) {
        DepList converted;
        converted.push_back(token_element("||"));
        append(converted, std::move(l));
        parent.back() = group_element(std::move(converted));
      } else {
        parent.push_back(group_element(std::move(l)));
      }
    }
  };

  if (!l.empty() && !ignore) {
    if (!ends_in_any_of(level - 1) && !ends_in_any_of(level)) {
      // ( ( ... ) ) -> ( ... ), when no "||" hangs around.
      append(parent, std::move(l));
    } else if (parent.empty()) {
      // An "||" in the level above forces us to keep the brackets.
      special_append();
    } else if (is_single && ends_in_any_of(level)) {
      // || ( A ) -> A, || ( || ( ... ) ) -> || ( ... )
      parent.pop_back();
      special_append();
    } else if (ends_in_any_of(level) && ends_in_any_of(level - 1)) {
      // || ( A || ( B C ) ) -> || ( A B C )
      parent.pop_back();
      append(parent, std::move(l));
    } else if (opconvert && ends_in_any_of(level)) {
      parent.pop_back();
      DepList converted;
      converted.push_back(token_element("||"));
      append(converted, std::move(l));
      parent.push_back(group_element(std::move(converted)));
    } else {
      special_append();
    }
  }
  return {};
}

Result<DepList> UseReducer::run(std::string_view depstr)
{
  if (m_options.opconvert && m_options.flat) {
    return invalid("portage.dep.use_reduce: 'opconvert' and 'flat' are mutually exclusive");
  }
  if (m_options.match_all && m_options.match_none) {
    return invalid("portage.dep.use_reduce: 'matchall' and 'matchnone' are mutually exclusive");
  }
  std::string subset_depstr;
  if (m_options.subset && !m_options.subset->empty()) {
    auto reduced = paren_reduce(depstr);
    if (!reduced) {
      return reduced;
    }
    auto selected = select_subset(*reduced, false, false);
    if (!selected) {
      return selected;
    }
    subset_depstr = paren_enclose(*selected);
    depstr = subset_depstr;
  }

  const auto tokens = split_tokens(depstr);
  m_stack.assign(1, DepList{});
  bool need_bracket = false;      // after a conditional or "||"
  bool need_simple_token = false; // after a SRC_URI arrow
  for (size_t position = 0; position < tokens.size(); ++position) {
    const auto token = tokens[position];
    if (token == "(") {
      if (need_simple_token) {
        return invalid(fmt::format("expected: file name, got: '{}', token {}", token, position + 1));
      }
      if (position + 1 < tokens.size() && tokens[position + 1] == ")") {
        return invalid(fmt::format("expected: dependency string, got: ')', token {}", position + 1));
      }
      need_bracket = false;
      m_stack.emplace_back();
    } else if (token == ")") {
      if (need_bracket) {
        return invalid(fmt::format("expected: '(', got: '{}', token {}", token, position + 1));
      }
      if (need_simple_token) {
        return invalid(fmt::format("expected: file name, got: '{}', token {}", token, position + 1));
      }
      if (m_stack.size() <= 1) {
        return invalid(fmt::format("no matching '(' for ')', token {}", position + 1));
      }
      if (auto closed = close_group(position); !closed) {
        return std::unexpected(closed.error());
      }
    } else if (token == "||") {
      if (m_options.is_src_uri) {
        return invalid(fmt::format("any-of dependencies are not allowed in SRC_URI: token {}", position + 1));
      }
      if (need_bracket) {
        return invalid(fmt::format("expected: '(', got: '{}', token {}", token, position + 1));
      }
      need_bracket = true;
      m_stack.back().push_back(token_element(token));
    } else if (token == "->") {
      if (need_simple_token) {
        return invalid(fmt::format("expected: file name, got: '{}', token {}", token, position + 1));
      }
      if (!m_options.is_src_uri) {
        return invalid(fmt::format("SRC_URI arrow are only allowed in SRC_URI: token {}", position + 1));
      }
      if (!m_eapi.src_uri_arrows) {
        return invalid(
          fmt::format("SRC_URI arrow not allowed in EAPI {}: token {}", m_options.eapi.value_or("None"), position + 1));
      }
      need_simple_token = true;
      m_stack.back().push_back(token_element(token));
    } else {
      if (need_bracket) {
        return invalid(fmt::format("expected: '(', got: '{}', token {}", token, position + 1));
      }
      if (need_simple_token && token.find('/') != std::string_view::npos) {
        return invalid(fmt::format("expected: file name, got: '{}', token {}", token, position + 1));
      }
      if (token.back() == '?') {
        need_bracket = true;
        m_stack.back().push_back(token_element(token));
        continue;
      }
      need_simple_token = false;
      if (m_options.is_src_uri) {
        if (!m_eapi.selective_src_uri_restriction && (token.starts_with("fetch+") || token.starts_with("mirror+"))) {
          return invalid(fmt::format("Selective fetch/mirror restriction not allowed in EAPI {}: token {}",
                                     m_options.eapi.value_or("None"), position + 1));
        }
        m_stack.back().push_back(token_element(token));
        continue;
      }
      auto element = make_token(token, position);
      if (!element) {
        return std::unexpected(element.error());
      }
      m_stack.back().push_back(std::move(*element));
    }
  }
  if (m_stack.size() != 1) {
    return invalid("Missing ')' at end of string");
  }
  if (need_bracket) {
    return invalid("Missing '(' at end of string");
  }
  if (need_simple_token) {
    return invalid("Missing file name at end of string");
  }
  return std::move(m_stack.front());
}

Result<DepNode> build_group(const DepList& list, DepNodeKind kind, const AtomOptions& atom_options)
{
  DepNode node;
  node.kind = kind;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& element = list[i];
    if (is_token(element, "||")) {
      if (i + 1 >= list.size() || !list[i + 1].is_group) {
        return invalid("'||' without a group");
      }
      auto child = build_group(list[++i].items, DepNodeKind::any_of, atom_options);
      if (!child) {
        return child;
      }
      node.children.push_back(std::move(*child));
    } else if (element.is_group) {
      auto child = build_group(element.items, DepNodeKind::all_of, atom_options);
      if (!child) {
        return child;
      }
      node.children.push_back(std::move(*child));
    } else {
      DepNode leaf;
      leaf.kind = DepNodeKind::atom;
      if (element.atom) {
        leaf.atom = element.atom;
      } else {
        auto atom = parse_atom(element.token, atom_options);
        if (!atom) {
          return std::unexpected(atom.error());
        }
        leaf.atom = std::make_shared<const Atom>(std::move(*atom));
      }
      node.children.push_back(std::move(leaf));
    }
  }
  return node;
}

} // namespace

bool DepElement::operator==(const DepElement& other) const
{
  return is_group == other.is_group && token == other.token && items == other.items;
}

Result<DepList> use_reduce(std::string_view depstr, const UseReduceOptions& options)
{
  UseReducer reducer(options);
  return reducer.run(depstr);
}

Result<DepList> paren_reduce(std::string_view depstr)
{
  auto malformed = [depstr] { return invalid(fmt::format("malformed syntax: '{}'", depstr)); };
  std::vector<DepList> stack(1);
  bool need_bracket = false;
  for (const auto token : split_tokens(depstr)) {
    if (token == "(") {
      need_bracket = false;
      stack.emplace_back();
    } else if (token == ")") {
      if (need_bracket || stack.size() <= 1) {
        return malformed();
      }
      auto l = std::move(stack.back());
      stack.pop_back();
      const long level = static_cast<long>(stack.size()) - 1;
      auto& parent = stack.back();
      const bool is_single =
        l.size() == 1 || (l.size() == 2 && (is_token(l.front(), "||") || last_is_question_mark(l.front())));
      auto ends_in_any_of = [&stack](long k) {
        return k >= 0 && !stack[static_cast<size_t>(k)].empty() && is_token(stack[static_cast<size_t>(k)].back(), "||");
      };
      auto ends_in_operator = [&stack](long k) {
        if (k < 0 || stack[static_cast<size_t>(k)].empty()) {
          return false;
        }
        const auto& last = stack[static_cast<size_t>(k)].back();
        return is_token(last, "||") || last_is_question_mark(last);
      };
      auto special_append = [&]() {
        if (is_single && (parent.empty() || !last_is_question_mark(parent.back()))) {
          if (l.size() == 1 && l.front().is_group) {
            append(parent, std::move(l.front().items));
          } else {
            append(parent, std::move(l));
          }
        } else {
          parent.push_back(group_element(std::move(l)));
        }
      };
      if (!l.empty()) {
        if (!ends_in_any_of(level - 1) && !ends_in_operator(level)) {
          append(parent, std::move(l));
        } else if (parent.empty()) {
          special_append();
        } else if (l.size() == 1 && ends_in_any_of(level)) {
          parent.pop_back();
          special_append();
        } else if (l.size() == 2 && (is_token(l.front(), "||") || last_is_question_mark(l.front())) &&
                   (parent.back() == l.front() || is_token(parent.back(), "||"))) {
          parent.pop_back();
          special_append();
        } else {
          special_append();
        }
      } else if (!parent.empty() && (is_token(parent.back(), "||") || last_is_question_mark(parent.back()))) {
        parent.pop_back();
      }
    } else if (token == "||") {
      if (need_bracket) {
        return malformed();
      }
      need_bracket = true;
      stack.back().push_back(token_element(token));
    } else {
      if (need_bracket) {
        return malformed();
      }
      if (token.back() == '?') {
        need_bracket = true;
      }
      stack.back().push_back(token_element(token));
    }
  }
  if (stack.size() != 1 || need_bracket) {
    return malformed();
  }
  return std::move(stack.front());
}

std::string paren_enclose(const DepList& list)
{
  std::string out;
  for (const auto& element : list) {
    if (!out.empty()) {
      out += ' ';
    }
    if (element.is_group) {
      out += "( " + paren_enclose(element.items) + " )";
    } else {
      out += element.token;
    }
  }
  return out;
}

nlohmann::json dep_list_to_json(const DepList& list)
{
  auto out = nlohmann::json::array();
  for (const auto& element : list) {
    if (element.is_group) {
      out.push_back(dep_list_to_json(element.items));
    } else {
      out.push_back(element.token);
    }
  }
  return out;
}

Result<DepNode> dep_tree(const DepList& reduced, const std::optional<std::string>& eapi)
{
  AtomOptions atom_options;
  atom_options.eapi = eapi;
  return build_group(reduced, DepNodeKind::all_of, atom_options);
}

Result<DepNode> reduce_dependencies(std::string_view depstr, const FlagSet& use, const std::optional<std::string>& eapi)
{
  UseReduceOptions options;
  options.use = use;
  options.eapi = eapi;
  options.token_class = TokenClass::atom;
  auto reduced = use_reduce(depstr, options);
  if (!reduced) {
    return std::unexpected(reduced.error());
  }
  return dep_tree(*reduced, eapi);
}

nlohmann::json dep_tree_to_json(const DepNode& node)
{
  switch (node.kind) {
  case DepNodeKind::atom:
    return node.atom ? nlohmann::json(node.atom->text) : nlohmann::json(nullptr);
  case DepNodeKind::any_of: {
    auto alternatives = nlohmann::json::array();
    for (const auto& child : node.children) {
      alternatives.push_back(dep_tree_to_json(child));
    }
    return nlohmann::json{{"any_of", alternatives}};
  }
  case DepNodeKind::all_of:
    break;
  }
  auto out = nlohmann::json::array();
  for (const auto& child : node.children) {
    out.push_back(dep_tree_to_json(child));
  }
  return out;
}

} // namespace swarm::portage
