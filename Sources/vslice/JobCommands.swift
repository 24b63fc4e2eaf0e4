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
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        runner.prepare()
        let store = try runner.store.open()
        let ids: [String]
        if let task {
            ids = [task]
        } else {
            ids = try store.tasks().filter { JobStore.resumableStatuses.contains($0.status) && !store.isLeasedByOther($0) }.map(\.id)
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
        discussion: "The work folder of a task no process runs is removed at once; otherwise `vslice gc` removes it later.")

    @Argument(help: "A task ID (or its first characters).")
    var task: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let store = try store.open()
        guard let t = try store.task(task) else { throw VSliceError(.usage, "cancel", reason: "no task '\(task)'") }
        let running = store.isLeasedByOther(t)
        let changed = try store.cancel(t.id)
        var removed = false
        if changed && !running && !t.workDir.isEmpty {
            try GarbageCollector.remove(t, store: store)
            removed = !FileManager.default.fileExists(atPath: t.workDir)
        }
        let status = try store.status(of: t.id) ?? t.status
        if json {
            try Terminal.printJSON(CancelResult(task: t.id, status: status, changed: changed, running: running,
                                                workRemoved: removed))
        } else if !changed {
            print("task \(t.id.prefix(8)) is already \(t.status)")
        } else {
            print("task \(t.id.prefix(8)) cancelled" + (running ? "; its process (pid \(t.leasePid ?? 0)) stops at its next heartbeat"
                                                                : removed ? "; work folder removed" : ""))
        }
    }

    struct CancelResult: Encodable {
        var task: String
        var status: String
        var changed: Bool
        var running: Bool
        var workRemoved: Bool
    }
}

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove the work folders and part files of done, cancelled and unresumable tasks.",
        discussion: """
            An unfinished task is unresumable when its input is gone or changed. --unfinished also cancels and \
            cleans every other unfinished task. Tasks held by a live process are never touched.
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
        abstract: "List tasks with their progress, or one task's events, segments and traces.")

    @Argument(help: "A task ID (or its first characters).")
    var task: String?

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    struct Detail: Encodable {
        var task: TaskRecord
        var events: [EventRecord]
        var segments: [SegmentRecord]
        var traces: [TraceRecord]
    }

    func run() throws {
        let store = try store.open()
        guard let id = task else {
            let tasks = try store.tasks()
            if json { try Terminal.printJSON(tasks); return }
            for t in tasks {
                let segs = try store.segments(task: t.id)
                let done = segs.filter { $0.status == "done" }
                let frames = done.map { $0.framesDone ?? 0 }.reduce(0, +)
                let percent = t.framesTotal > 0 ? String(format: "%5.1f%%", 100 * Double(frames) / Double(t.framesTotal)) : "    -"
                print("\(t.id.prefix(8))  \(t.status.padding(toLength: 11, withPad: " ", startingAt: 0)) \(percent) "
                      + "\(done.count)/\(segs.count) segments  \(t.input) → \(t.output)")
            }
            return
        }
        guard let t = try store.task(id) else { throw VSliceError(.usage, "status", reason: "no task '\(id)'") }
        let detail = Detail(task: t, events: try store.events(task: t.id), segments: try store.segments(task: t.id),
                            traces: try store.traces(task: t.id))
        if json { try Terminal.printJSON(detail); return }
        print("task \(t.id) \(t.status)\(t.error.map { ": " + $0 } ?? "")\n  \(t.input) → \(t.output)\n  work: \(t.workDir)")
        for e in detail.events { print("  event \(e.node): \(e.status), \(e.attempts) attempt(s)\(e.error.map { " — " + $0 } ?? "")") }
        for s in detail.segments {
            print("  segment \(s.ord): \(s.status), \(s.framesDone ?? 0)/\(s.framesPlanned) frames, \(s.attempts) attempt(s)")
        }
        print("  \(detail.traces.count) traces")
    }
}
