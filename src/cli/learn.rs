//! `overcommit learn`: list the lessons, or run one and explain it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::common::{Failure, Jobs, runtime, write_sweep};

/// The arguments of `learn`.
#[derive(Args)]
pub struct LearnArgs {
    /// The lesson to run (none: list them)
    pub name: Option<String>,
    /// The language of the explanation: en or zh
    #[arg(long, default_value = "en")]
    pub lang: overcommit::learn::Lang,
    /// Where to write the runs, plots and report (default: output/learn/<lesson>/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub jobs: Jobs,
}

pub fn learn(args: LearnArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let LearnArgs { name, lang, out: out_dir, jobs } = args;
    use overcommit::learn;
    let zh = lang == learn::Lang::Zh;
    let Some(name) = name else {
        writeln!(out, "{}", if zh { "课程（overcommit learn 名称）：" } else { "Lessons (overcommit learn NAME):" })?;
        for l in learn::LESSONS {
            writeln!(out, "  {:<12} {}", l.name, l.question[usize::from(zh)])?;
        }
        return Ok(());
    };
    let lesson = learn::find(&name).ok_or_else(|| {
        let names: Vec<&str> = learn::LESSONS.iter().map(|l| l.name).collect();
        Failure::bad_input(format!("error: no lesson {name:?}; lessons: {}", names.join(", ")))
    })?;
    let (table, scenario) = learn::run(lesson, jobs.get()).map_err(|e| runtime(e.to_string()))?;
    let dir = out_dir.unwrap_or_else(|| PathBuf::from("output").join("learn").join(lesson.name));
    write_sweep(&dir, &table)?;
    writeln!(out, "{}\n", lesson.question[usize::from(zh)])?;
    for line in (lesson.explain)(&table, &scenario, lang) {
        writeln!(out, "{line}\n")?;
    }
    writeln!(
        out,
        "{} {}/density-p99.png, {}/density-slowdown.png\n{} {}/report.html\n{} {}/sweep.csv ({} {})",
        if zh { "图：" } else { "plots:" },
        dir.display(),
        dir.display(),
        if zh { "报告：" } else { "report:" },
        dir.display(),
        if zh { "数据：" } else { "data:" },
        dir.display(),
        if zh { "场景" } else { "scenario" },
        lesson.file
    )?;
    Ok(())
}
