//! The container images as the tests read them: `images/Dockerfile` parsed into its stages and instructions, and the workspace binary each image's `ENTRYPOINT` runs, which the chart tests start as the charts' pods would (`tests/images.rs` checks the file against the workspace, `scripts/helm-build`, the charts and the release workflow; docs/images.md).

use std::path::{Path, PathBuf};

/// The Dockerfile of both images, relative to the repository root.
pub const DOCKERFILE: &str = "images/Dockerfile";

/// One image: a target (a final stage) of [`DOCKERFILE`], and the chart that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    Hub,
    Spoke,
}

impl Image {
    pub const ALL: [Image; 2] = [Image::Hub, Image::Spoke];

    /// Its stage in the Dockerfile (`docker buildx build --target …`).
    pub fn target(self) -> &'static str {
        match self {
            Image::Hub => "hub",
            Image::Spoke => "spoke",
        }
    }

    /// The directory of the chart that runs it, relative to the repository root.
    pub fn chart(self) -> &'static str {
        match self {
            Image::Hub => "charts/edgecd-hub",
            Image::Spoke => "charts/edgecd-spoke",
        }
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// The binary an image's `ENTRYPOINT` runs, as `(package, bin)` of the workspace: what
/// `edgecd_testkit::binaries::workspace_binary` builds for the chart tests. Fails unless the entrypoint
/// is a binary the image copies from a stage that builds exactly that one with `cargo build`, under its
/// own name.
pub fn entrypoint_binary(image: Image) -> Result<(String, String), String> {
    let dockerfile = Dockerfile::read()?;
    let built = dockerfile.entrypoint_build(image)?;
    Ok((built.package, built.bin))
}

/// One instruction: its keyword (upper case) and the rest of its (joined) lines.
#[derive(Debug, Clone)]
pub struct Instruction {
    pub keyword: String,
    pub rest: String,
    /// 1-based line of its keyword.
    pub line: usize,
}

/// One build stage: `FROM [--platform=P] BASE [AS NAME]` and its instructions.
#[derive(Debug, Clone)]
pub struct Stage {
    pub base: String,
    pub platform: Option<String>,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// `COPY [--from=STAGE] [--chmod=…] SOURCE… DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub from: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// A `cargo build` command of a `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoBuild {
    pub locked: bool,
    /// `release` for `--release`, the name of `--profile`, else `dev`.
    pub profile: String,
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    /// `--target`, as written (usually a variable).
    pub target: Option<String>,
}

impl CargoBuild {
    /// The directory under `target/[TRIPLE/]` the profile's output goes to.
    pub fn profile_dir(&self) -> &str {
        match self.profile.as_str() {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        }
    }
}

/// The binary an image's entrypoint runs and where it comes from.
#[derive(Debug, Clone)]
pub struct EntrypointBuild {
    pub package: String,
    pub bin: String,
    /// The entrypoint's path in the image.
    pub path: String,
    /// Where the image copies it from, in [`EntrypointBuild::stage`].
    pub source: String,
    /// The stage whose `cargo build` makes it, and the `RUN` holding that command.
    pub stage: String,
    pub build: CargoBuild,
    pub run: String,
}

/// A parsed Dockerfile: the `ARG`s before the first `FROM`, then the stages.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// [`DOCKERFILE`], parsed.
    pub fn read() -> Result<Self, String> {
        let path = repo_root().join(DOCKERFILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{DOCKERFILE}: {e}"))
    }

    /// Parses Dockerfile text: comments and parser directives dropped, lines ending in `\` joined with the
    /// next (comment lines inside such a run skipped, as Docker does). Heredocs are not understood.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut instructions = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                continue;
            }
            let (start, mut joined) = current.take().unwrap_or((index + 1, String::new()));
            match line.trim_end().strip_suffix('\\') {
                Some(head) => {
                    joined.push_str(head);
                    current = Some((start, joined));
                }
                None => {
                    joined.push_str(line);
                    instructions.push((start, joined));
                }
            }
        }
        if let Some((start, _)) = current {
            return Err(format!("line {start}: a continuation runs past the end"));
        }

        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (line, joined) in instructions {
            let joined = joined.trim();
            let (keyword, rest) = joined
                .split_once(char::is_whitespace)
                .unwrap_or((joined, ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim().to_owned();
            if keyword == "FROM" {
                stages.push(parse_from(&rest).map_err(|e| format!("line {line}: {e}"))?);
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(Instruction {
                    keyword,
                    rest,
                    line,
                });
            } else if keyword == "ARG" {
                global_args.push(match rest.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(unquote(value))),
                    None => (rest, None),
                });
            } else {
                return Err(format!("line {line}: {keyword} before the first FROM"));
            }
        }
        Ok(Self {
            global_args,
            stages,
        })
    }

    /// The default of global `ARG name`.
    pub fn global_arg(&self, name: &str) -> Option<&str> {
        self.global_args
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `text` with `$NAME` and `${NAME}` of global args replaced by their defaults (others left as written).
    pub fn expand(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, value) in &self.global_args {
            if let Some(value) = value {
                out = out
                    .replace(&format!("${{{name}}}"), value)
                    .replace(&format!("${name}"), value);
            }
        }
        out
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }

    /// The stage `name` and the stages it is built `FROM`, nearest first.
    pub fn lineage(&self, name: &str) -> Vec<&Stage> {
        let mut chain = Vec::new();
        let mut next = self.stage(name);
        while let Some(stage) = next {
            if chain.len() > self.stages.len() {
                break;
            }
            chain.push(stage);
            next = self.stage(&stage.base);
        }
        chain
    }

    /// The image's entrypoint binary, traced back to the `cargo build` that makes it.
    pub fn entrypoint_build(&self, image: Image) -> Result<EntrypointBuild, String> {
        let target = image.target();
        let stage = self
            .stage(target)
            .ok_or_else(|| format!("no stage {target}"))?;
        let entrypoint = stage.entrypoint()?;
        let path = entrypoint
            .first()
            .ok_or_else(|| format!("stage {target}: an empty ENTRYPOINT"))?
            .clone();
        if entrypoint.len() != 1 {
            return Err(format!(
                "stage {target}: the ENTRYPOINT {entrypoint:?} has arguments; the charts pass theirs as args"
            ));
        }
        let copy = stage
            .copies()?
            .into_iter()
            .rev()
            .find(|c| c.dest == path)
            .ok_or_else(|| format!("stage {target}: nothing is copied to the entrypoint {path}"))?;
        let from = copy.from.clone().ok_or_else(|| {
            format!("stage {target}: {path} is copied from the context, not built")
        })?;
        let [source] = copy.sources.as_slice() else {
            return Err(format!(
                "stage {target}: {path} is copied from several sources"
            ));
        };
        let bin = basename(&path).to_owned();
        if basename(source) != bin {
            return Err(format!(
                "stage {target}: {path} is {source} of stage {from}, another name"
            ));
        }
        let build_stage = self
            .stage(&from)
            .ok_or_else(|| format!("stage {target} copies from {from}, which is no stage"))?;
        let mut found = Vec::new();
        for instruction in build_stage.runs() {
            for build in cargo_builds(&instruction.rest) {
                if build.bins.contains(&bin) {
                    found.push((build, instruction.rest.clone()));
                }
            }
        }
        let (build, run) = match found.len() {
            1 => found.remove(0),
            0 => return Err(format!("stage {from} has no `cargo build` of --bin {bin}")),
            n => return Err(format!("stage {from} builds --bin {bin} {n} times")),
        };
        let [package] = build.packages.as_slice() else {
            return Err(format!(
                "stage {from}: `cargo build` of {bin} names packages {:?}, not exactly one",
                build.packages
            ));
        };
        if build.bins.len() != 1 {
            return Err(format!(
                "stage {from}: `cargo build` names bins {:?}, not only {bin}",
                build.bins
            ));
        }
        Ok(EntrypointBuild {
            package: package.clone(),
            bin,
            path,
            source: source.clone(),
            stage: from,
            run,
            build,
        })
    }
}

impl Stage {
    /// The instructions with this keyword.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }

    /// The last instruction with this keyword (the one that counts for ENTRYPOINT, CMD, USER).
    pub fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.instructions
            .iter()
            .rev()
            .find(|i| i.keyword == keyword)
    }

    pub fn runs(&self) -> impl Iterator<Item = &Instruction> + '_ {
        self.all("RUN")
    }

    /// The exec form of its last `ENTRYPOINT`.
    pub fn entrypoint(&self) -> Result<Vec<String>, String> {
        self.exec_form("ENTRYPOINT")
    }

    /// The exec form of its last `CMD`.
    pub fn cmd(&self) -> Result<Vec<String>, String> {
        self.exec_form("CMD")
    }

    fn exec_form(&self, keyword: &str) -> Result<Vec<String>, String> {
        let instruction = self.last(keyword).ok_or_else(|| format!("no {keyword}"))?;
        exec_form(&instruction.rest).ok_or_else(|| {
            format!(
                "line {}: {keyword} {} is not in exec form",
                instruction.line, instruction.rest
            )
        })
    }

    /// Its `COPY` instructions.
    pub fn copies(&self) -> Result<Vec<Copy>, String> {
        self.all("COPY")
            .map(|i| parse_copy(&i.rest).map_err(|e| format!("line {}: {e}", i.line)))
            .collect()
    }

    /// The variables its `ENV` instructions set, in order (later ones win).
    pub fn env(&self) -> Vec<(String, String)> {
        self.all("ENV").flat_map(|i| parse_env(&i.rest)).collect()
    }

    /// The value its `ENV` gives `name` last.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Its last `USER` as numbers: `(uid, gid)`; an error for a name.
    pub fn user(&self) -> Result<(u32, Option<u32>), String> {
        let user = self.last("USER").ok_or("no USER")?;
        let (uid, gid) = match user.rest.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user.rest.as_str(), None),
        };
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| format!("line {}: USER {} is not numeric", user.line, user.rest))
        };
        Ok((number(uid)?, gid.map(number).transpose()?))
    }
}

/// The last path component.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parse_from(rest: &str) -> Result<Stage, String> {
    let mut platform = None;
    let mut words = Vec::new();
    for word in rest.split_whitespace() {
        if let Some(value) = word.strip_prefix("--platform=") {
            platform = Some(value.to_owned());
        } else if word.starts_with("--") {
            return Err(format!("FROM flag {word} not understood"));
        } else {
            words.push(word);
        }
    }
    let (base, name) = match words.as_slice() {
        [base] => (*base, None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, Some((*name).to_owned())),
        _ => return Err(format!("FROM {rest} not understood")),
    };
    Ok(Stage {
        base: base.to_owned(),
        platform,
        name,
        instructions: Vec::new(),
    })
}

fn parse_copy(rest: &str) -> Result<Copy, String> {
    let mut from = None;
    let mut paths = Vec::new();
    for word in shell_words(rest) {
        if let Some(value) = word.strip_prefix("--from=") {
            from = Some(value.to_owned());
        } else if word.starts_with("--") {
            // --chmod, --chown, --link: no bearing on what is copied where.
        } else {
            paths.push(word);
        }
    }
    let dest = paths.pop().ok_or("COPY without a destination")?;
    if paths.is_empty() {
        return Err("COPY without a source".into());
    }
    Ok(Copy {
        from,
        sources: paths,
        dest,
    })
}

fn parse_env(rest: &str) -> Vec<(String, String)> {
    let words = shell_words(rest);
    if words.first().is_some_and(|w| !w.contains('=')) {
        // Legacy form: `ENV NAME value with spaces`.
        let value = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, v)| v)
            .trim();
        return vec![(words[0].clone(), value.to_owned())];
    }
    words
        .into_iter()
        .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn unquote(value: &str) -> String {
    shell_words(value).concat()
}

/// Words split as a POSIX shell splits them, quotes removed (no expansion), comments dropped; `;` (for a
/// newline too), `&&`, `||`, `|`, `&`, `(` and `)` are words of their own.
pub fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    let flush = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                word.push(next);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '#' if !in_word => {
                // A comment, to the end of the line.
                for q in chars.by_ref() {
                    if q == '\n' {
                        break;
                    }
                }
                words.push(";".into());
            }
            '(' | ')' => {
                flush(&mut word, &mut in_word, &mut words);
                words.push(c.to_string());
            }
            ';' | '\n' => {
                flush(&mut word, &mut in_word, &mut words);
                words.push(";".into());
            }
            '&' | '|' => {
                flush(&mut word, &mut in_word, &mut words);
                let mut op = c.to_string();
                if chars.peek() == Some(&c) {
                    chars.next();
                    op.push(c);
                }
                words.push(op);
            }
            c if c.is_whitespace() => flush(&mut word, &mut in_word, &mut words),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut words);
    words
}

/// One simple command of a shell text: its leading `NAME=value` assignments and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub assignments: Vec<(String, String)>,
    pub words: Vec<String>,
}

impl ShellCommand {
    /// The value the command's own assignments give `name`.
    pub fn assignment(&self, name: &str) -> Option<&str> {
        self.assignments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether its words start with `prefix`.
    pub fn starts_with(&self, prefix: &[&str]) -> bool {
        self.words.len() >= prefix.len() && self.words.iter().zip(prefix).all(|(w, p)| w == p)
    }
}

/// The simple commands of a shell text: its words between `;`, `&&`, `||`, `|`, `&` and newlines;
/// parentheses (subshells) are taken as separators too.
pub fn shell_commands(text: &str) -> Vec<ShellCommand> {
    let mut commands = Vec::new();
    let mut command = ShellCommand {
        assignments: Vec::new(),
        words: Vec::new(),
    };
    for word in shell_words(text) {
        if matches!(word.as_str(), ";" | "&&" | "||" | "|" | "&" | "(" | ")") {
            commands.push(std::mem::replace(
                &mut command,
                ShellCommand {
                    assignments: Vec::new(),
                    words: Vec::new(),
                },
            ));
        } else if command.words.is_empty()
            && let Some((name, value)) = assignment(&word)
        {
            command
                .assignments
                .push((name.to_owned(), value.to_owned()));
        } else {
            command.words.push(word);
        }
    }
    commands.push(command);
    commands.retain(|c| !c.words.is_empty());
    commands
}

fn assignment(word: &str) -> Option<(&str, &str)> {
    word.split_once('=').filter(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    })
}

/// The `cargo build` commands of a shell text.
pub fn cargo_builds(text: &str) -> Vec<CargoBuild> {
    let mut builds = Vec::new();
    for command in shell_commands(text) {
        if !command.starts_with(&["cargo", "build"]) {
            continue;
        }
        let mut build = CargoBuild {
            locked: false,
            profile: "dev".into(),
            packages: Vec::new(),
            bins: Vec::new(),
            target: None,
        };
        let mut words = command.words[2..].iter();
        while let Some(word) = words.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
                _ => (word.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| words.next().cloned());
            match flag {
                "--locked" | "--frozen" => build.locked = true,
                "--release" | "-r" => build.profile = "release".into(),
                "--profile" => build.profile = value().unwrap_or_default(),
                "-p" | "--package" => build.packages.extend(value()),
                "--bin" => build.bins.extend(value()),
                "--target" => build.target = value(),
                _ => {}
            }
        }
        builds.push(build);
    }
    builds
}

/// A JSON array of strings (a Dockerfile's exec form, a YAML flow sequence of quoted strings).
pub fn exec_form(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None if items.is_empty() => return Some(items),
            Some('"') => {}
            _ => return None,
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    c @ ('"' | '\\' | '/') => item.push(c),
                    _ => return None,
                },
                c => item.push(c),
            }
        }
        items.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn instructions_join_continuations_and_skip_comments() {
        let file = Dockerfile::parse(
            "# syntax=docker/dockerfile:1\nARG V=1.2\nFROM --platform=$BUILDPLATFORM base:${V} AS build\n\
             RUN a \\\n  # a comment inside\n  && cargo build --locked --release -p pkg --bin b\n\
             FROM scratch AS out\nCOPY --from=build --chmod=0755 /out/b /usr/bin/b\n\
             ENV A=1 B=\"two words\"\nUSER 10:20\nENTRYPOINT [\"/usr/bin/b\"]\nCMD [\"run\", \"--x=\\\"y\\\"\"]\n",
        )
        .unwrap();
        assert_eq!(file.global_arg("V"), Some("1.2"));
        assert_eq!(file.expand(&file.stages[0].base), "base:1.2");
        assert_eq!(file.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
        let run = file.stages[0].runs().next().unwrap();
        assert_eq!(run.line, 4);
        let builds = cargo_builds(&run.rest);
        assert_eq!(
            builds,
            vec![CargoBuild {
                locked: true,
                profile: "release".into(),
                packages: vec!["pkg".into()],
                bins: vec!["b".into()],
                target: None,
            }]
        );
        let out = file.stage("out").unwrap();
        assert_eq!(out.entrypoint().unwrap(), vec!["/usr/bin/b"]);
        assert_eq!(out.cmd().unwrap(), vec!["run", "--x=\"y\""]);
        assert_eq!(out.user().unwrap(), (10, Some(20)));
        assert_eq!(out.env_var("B").as_deref(), Some("two words"));
        assert_eq!(
            out.copies().unwrap(),
            vec![Copy {
                from: Some("build".into()),
                sources: vec!["/out/b".into()],
                dest: "/usr/bin/b".into(),
            }]
        );
    }

    #[test]
    fn shell_commands_split_on_operators_and_drop_assignments() {
        let commands = shell_commands(
            "set -eux # the caller's\n(cd \"$d\" && A=1 B='x y' go install -ldflags \"-s -w\" m@v) >&2\necho a#b",
        );
        let words: Vec<Vec<&str>> = commands
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec!["set", "-eux"],
                vec!["cd", "$d"],
                vec!["go", "install", "-ldflags", "-s -w", "m@v"],
                vec![">"],
                vec!["2"],
                vec!["echo", "a#b"],
            ]
        );
        assert_eq!(commands[2].assignment("B"), Some("x y"));
        assert!(commands[2].starts_with(&["go", "install"]));
        assert_eq!(exec_form("[]"), Some(vec![]));
        assert_eq!(exec_form("serve"), None);
        assert_eq!(exec_form("[\"a\" \"b\"]"), None);
    }
}
