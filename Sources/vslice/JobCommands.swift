import ArgumentParser
import Foundation
import Logging
import VSliceKit

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume an unfinished task (or all of them) with the options it was started with.",
        discussion: """
            Done segments whose files are intact are kept; the rest is redone. Refused (exit 5) when the input \
            changed or another live process holds the task. With --all, tasks run one after the other; the exit \
            code is 0 only if every one finished, else 6.

            EXAMPLES:
              vslice resume 20da0bc1
              vslice resume 20da0bc1 --jobs 1
              vslice resume --all -q
            """)

    @Argument(help: "A task ID (or its first characters), as `vslice status` lists them.")
    var task: String?

    @Flag(help: "Resume every unfinished task not held by a live process.")
    var all = false

    @Option(help: "Segments encoded at once (default: as the task was started).")
    var jobs: Int?

    @OptionGroup var runner: RunOptions

    func validate() throws {
        if (task == nil) == !all { throw ValidationError("give a task ID or --all") }
        if runner.fresh { throw ValidationError("--fresh does not apply to resume; use `transcode --fresh`") }
        if let jobs, !TranscodeSettings.Limits.jobs.contains(jobs) {
            throw ValidationError("--jobs takes \(TranscodeSettings.Limits.jobs.lowerBound) to \(TranscodeSettings.Limits.jobs.upperBound), got \(jobs)")
        }
    }

    func run() throws {
        runner.prepare()
        let store = try runner.store.open()
        let ids: [String]
        if let task {
            ids = [task]
        } else {
            ids = try store.resumableTasks().map(\.id)
            if ids.isEmpty && !runner.quiet && !runner.json { print("nothing to resume") }
        }
        var failures: [VSliceError] = []
        for id in ids {
            if Cancellation.stopRequested { break }
            let t = try store.task(id)
            let outcome = runner.session.run(input: t?.input ?? id, output: t?.output ?? "") { onEvent throws(VSliceError) in
                try Transcoder.resume(taskId: id, store: store, logger: runner.logger, options: runner.pipelineOptions,
                                      jobs: jobs, onEvent: onEvent)
            }
            if let error = outcome.error {
                if task != nil { throw error }
                Terminal.printError(error.description)
                failures.append(error)
                if error.kind == .interrupted { throw error }
            }
        }
        if !failures.isEmpty {
            throw BatchFailure(message: "\(failures.count) of \(ids.count) tasks failed")
        }
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a task: it will not be resumed; a process running it stops within seconds (exit 130).",
        discussion: """
            The work folder of a task no process runs is removed at once; otherwise `vslice gc` removes it later.

            EXAMPLES:
              vslice cancel 20da0bc1
            """)

    @Argument(help: "A task ID (or its first characters).")
    var task: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let store = try store.open()
        guard let t = try store.task(task) else { throw VSliceError(.usage, "cancel", reason: "no task '\(task)'") }
        let outcome = try store.cancelTask(t)
        if json {
            try Terminal.printJSON(outcome)
        } else if !outcome.changed {
            print("task \(t.id.prefix(8)) is already \(t.status)")
        } else {
            print("task \(t.id.prefix(8)) cancelled" + (outcome.running ? "; its process (pid \(t.leasePid ?? 0)) stops at its next heartbeat"
                                                                        : outcome.workRemoved ? "; work folder removed" : ""))
        }
    }
}

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove the work folders and part files of done, cancelled and unresumable tasks.",
        discussion: """
            An unfinished task is unresumable when its input is gone or changed. --unfinished also cancels and \
            cleans every other unfinished task. Tasks held by a live process are never touched.

            EXAMPLES:
              vslice gc --dry-run
              vslice gc --unfinished
            """)

    @Flag(help: "Also cancel and clean unfinished (resumable) tasks.")
    var unfinished = false

    @Flag(help: "List what would be removed; remove nothing.")
    var dryRun = false

    @Option(help: ArgumentHelp("Also remove work folders and part files in DIR that belong to no task of this job store "
                               + "(left behind when the database was deleted), once untouched for --min-age seconds.",
                               valueName: "DIR"))
    var orphans: [String] = []

    @Option(help: "With --orphans: seconds since the last change before a folder counts as abandoned.")
    var minAge: Double = 3600

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if !(minAge >= 0) || !minAge.isFinite { throw ValidationError("--min-age takes a number of seconds ≥ 0") }
    }

    func run() throws {
        let ledger = try store.open()
        var items = try GarbageCollector.collect(store: ledger, includeUnfinished: unfinished, dryRun: dryRun)
        for dir in orphans {
            items += try GarbageCollector.orphans(in: dir, store: ledger, minAge: minAge, dryRun: dryRun)
        }
        if json { try Terminal.printJSON(items); return }
        for item in items {
            print("\(item.task.prefix(8))  \(item.status.padding(toLength: 11, withPad: " ", startingAt: 0)) \(item.reason)")
            for path in item.removed { print("    \(dryRun ? "would remove" : "removed") \(path)") }
        }
        let total = items.map(\.bytes).reduce(0, +)
        print(String(format: "%@ %d task(s), %.1f MB", dryRun ? "would free" : "freed", items.count, Double(total) / 1e6))
    }
}

/// Some items of a batch (or of `resume --all`) failed: exit 6.
struct BatchFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
    static let exitCode: Int32 = 6
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List tasks with their progress, or one task's events, segments, audio pieces and traces.",
        discussion: """
            Columns: TASK (ID prefix, usable with resume/cancel/status), STATUS, DONE (frames of finished \
            segments), SEGMENTS done/planned, UPDATED (last change or heartbeat), INPUT → OUTPUT. A task \
            recorded as running whose process is gone is shown as interrupted; one whose process has sent no \
            heartbeat for 15 s (stopped, or on another host) as stale. Both resume.

            EXAMPLES:
              vslice status                 the 20 newest tasks, newest first
              vslice status --limit 0       all of them
              vslice status 20da0bc1        one task: events, segments, audio pieces, traces
              vslice status --json | jq '.[] | select(.status == "\(TaskStatus.running.rawValue)") | .percent'
            """)

    @Argument(help: "A task ID (or its first characters).")
    var task: String?

    @Option(help: "Show the N newest tasks (0: all).")
    var limit = 20

    @Flag(help: "Print JSON (the task's fields plus status, recorded_status, frames_done, percent, segments_done, segments, age_seconds).")
    var json = false

    @OptionGroup var store: StoreOptions

    struct Detail: Encodable {
        /// The status as `vslice status` shows it (a dead holder's `running` task is interrupted or stale).
        var status: String
        var statusNote: String?
        var task: TaskRecord
        var events: [EventRecord]
        var segments: [SegmentRecord]
        /// The audio event's pieces (segments `TASK_audio_N`).
        var audioPieces: [SegmentRecord]
        var traces: [TraceRecord]
    }

    func validate() throws {
        if limit < 0 { throw ValidationError("--limit takes 0 (all) or more, got \(limit)") }
    }

    func run() throws {
        let store = try store.open()
        guard let id = task else { return try list(store) }
        guard let t = try store.task(id) else { throw VSliceError(.usage, "status", reason: "no task '\(id)'") }
        let live = store.liveStatus(t)
        let detail = Detail(status: live.status, statusNote: live.note, task: t, events: try store.events(task: t.id),
                            segments: try store.segments(task: t.id), audioPieces: try store.audioPieces(task: t.id),
                            traces: try store.traces(task: t.id))
        if json { try Terminal.printJSON(detail); return }
        print("task \(t.id) \(live.status)\(live.note.map { " (\($0))" } ?? "")\(t.error.map { ": " + $0 } ?? "")"
              + "\n  \(t.input) → \(t.output)\n  work: \(t.workDir)")
        for e in detail.events { print("  event \(e.node): \(e.status), \(e.attempts) attempt(s)\(e.error.map { " — " + $0 } ?? "")") }
        for s in detail.segments {
            print("  segment \(s.ord): \(s.status), \(s.framesDone ?? 0)/\(s.framesPlanned) frames, \(s.attempts) attempt(s)")
            // Each failed attempt, where it ran and why (a worker's error, or a lost element: its node failed…).
            for t in detail.traces where t.segmentId == s.id && t.status == .failed {
                // A Slurm element as Slurm names it (ARRAYJOB_INDEX), for scontrol and the slurm-*.out log.
                let element = t.engineJob.map { job in "\(t.engine ?? "") job \(job)" + (t.engine == "slurm" ? t.engineIndex.map { "_\($0)" } ?? "" : "") }
                let place = [t.host.isEmpty ? nil : "on \(t.host)", element].compactMap { $0 }
                print("    failed attempt\(place.isEmpty ? "" : " " + place.joined(separator: ", ")): \(t.error ?? "no reason recorded")")
            }
        }
        for p in detail.audioPieces {
            print("  audio piece \(p.ord): \(p.status), \(p.framesDone ?? 0)/\(p.framesPlanned) packets, \(p.attempts) attempt(s)")
        }
        print("  \(detail.traces.count) traces")
    }

    /// The newest tasks: a table, or JSON rows (the task's fields plus its summary's).
    func list(_ store: JobStore) throws {
        let (tasks, total) = try TaskSummary.newest(store: store, limit: limit)
        if json {
            let rows: [[String: Any]] = tasks.map { t in
                var row = EventWriter.fields(t.task)
                row["status"] = t.status
                row["recorded_status"] = t.task.status
                if let note = t.note { row["status_note"] = note }
                row["frames_done"] = t.framesDone
                row["percent"] = t.percent
                row["segments_done"] = t.segmentsDone
                row["segments"] = t.segments
                row["age_seconds"] = t.ageSeconds.rounded()
                return row
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        if tasks.isEmpty { print("no tasks in \(store.path)"); return }
        let header = ["TASK", "STATUS", "DONE", "SEGMENTS", "UPDATED", "INPUT → OUTPUT"]
        let lines = tasks.map { t in
            [String(t.task.id.prefix(8)), t.status, t.percentText, "\(t.segmentsDone)/\(t.segments)", t.ageText,
             "\(t.task.input) → \(t.task.output)" + (t.note.map { "  (\($0))" } ?? "")]
        }
        let table = [header] + lines
        let widths = (0..<header.count - 1).map { c in table.map { $0[c].count }.max() ?? 0 }
        for l in table {
            var text = ""
            for c in 0..<widths.count {
                let cell = l[c]
                // Numbers right-aligned, words left-aligned.
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                text += (c == 2 || c == 3 ? pad + cell : cell + pad) + "  "
            }
            print(text + l[header.count - 1])
        }
        if total > tasks.count { print("(\(total - tasks.count) older task(s) not shown; --limit 0 shows all)") }
    }
}
