import ArgumentParser
import Foundation
import Logging
import VSliceKit

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
    var task: TaskID?

    @Option(help: "Show the N newest tasks (0: all).")
    var limit = 20

    @Flag(help: "Print JSON (the task's fields plus status, recorded_status, frames_done (the running segments' frames so far included), percent, segments_done, segments, age_seconds).")
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
        /// The analyze event's elements (segments `TASK_analyze_N`, `--analyze`).
        var analyses: [SegmentRecord] = []
        var traces: [TraceRecord]
        /// What the scheduler holds of the unfinished segments now, by segment order ("running on n2, slurm job 12_3").
        var scheduled: [String: String]?
        /// The processor logs that exist now (`vslice logs`), by path.
        var processorLogs: [String] = []
        /// The kept frames the running segment attempts have done so far, by segment order.
        var runningFrames: [String: Int] = [:]
    }

    func validate() throws {
        if limit < 0 { throw ValidationError("--limit takes 0 (all) or more, got \(limit)") }
    }

    func run() throws {
        let store = try store.open()
        guard let id = task else { return try list(store) }
        guard let t = try store.task(id) else { throw VSliceError(.usage, "status", reason: "no task '\(id)'") }
        let live = store.liveStatus(t)
        let segments = try store.segments(task: t.id)
        let running = live.status == TaskStatus.running.rawValue || live.status == "detached"
            ? TaskSummary.running(t, segments: segments, store: store) : [:]
        var detail = Detail(status: live.status, statusNote: live.note, task: t, events: try store.events(task: t.id),
                            segments: segments, audioPieces: try store.audioPieces(task: t.id),
                            analyses: try store.analyses(task: t.id), traces: try store.traces(task: t.id),
                            scheduled: ExecutorControl.scheduled(t).map { Dictionary(uniqueKeysWithValues: $0.map { (String($0.key), $0.value) }) })
        detail.runningFrames = Dictionary(uniqueKeysWithValues: running.map { (String($0.key), $0.value) })
        if json {
            var d = detail
            d.processorLogs = ProcessorLogs.find(t, store: store).map(\.path)
            try Terminal.printJSON(d)
            return
        }
        let workGone = !t.workDir.isEmpty && !FileManager.default.fileExists(atPath: t.workDir)
        print("task \(t.id) \(live.status)\(live.note.map { " (\($0))" } ?? "")\(t.error.map { ": " + $0 } ?? "")"
              + "\n  \(t.input) → \(t.output)\n  work: \(t.workDir)\(workGone ? " (removed)" : "")")
        let logs = ProcessorLogs.find(t, store: store)
        if !logs.isEmpty {
            let folders = Set(logs.map { ($0.path as NSString).deletingLastPathComponent }).sorted()
            print("  processor logs: segments \(logs.map { String($0.segment) }.joined(separator: ", ")) in \(folders.joined(separator: ", "))"
                  + " (`vslice logs \(t.id.short)`)")
        }
        for e in detail.events { print("  event \(e.node): \(e.status), \(e.attempts) attempt(s)\(e.error.map { " — " + $0 } ?? "")") }
        // What Slurm holds now: the ledger hears of an element only when its worker's record is collected.
        for s in detail.segments {
            let now = s.status == .done ? nil : detail.scheduled?[String(s.ord)]
            print("  segment \(s.ord): \(s.status), \(running[s.ord] ?? s.framesDone ?? 0)/\(s.framesPlanned) frames, \(s.attempts) attempt(s)"
                  + (now.map { "; \($0)" } ?? ""))
            // Each failed attempt, where it ran and why (a worker's error, or a lost element: its node failed…).
            for t in detail.traces where t.segmentId == s.id && t.status == .failed {
                // A Slurm element as Slurm names it (ARRAYJOB_INDEX), for scontrol and the slurm-*.out log.
                let element = t.engineJob.map { job in "\(t.engine ?? "") \(t.engine == "ray" ? "actor" : "job") \(job)" + (t.engine == "slurm" ? t.engineIndex.map { "_\($0)" } ?? "" : "") }
                let place = [t.host.isEmpty ? nil : "on \(t.host)", element].compactMap { $0 }
                print("    failed attempt\(place.isEmpty ? "" : " " + place.joined(separator: ", ")): \(t.error ?? "no reason recorded")")
            }
        }
        for p in detail.audioPieces {
            print("  audio piece \(p.ord): \(p.status), \(p.framesDone ?? 0)/\(p.framesPlanned) packets, \(p.attempts) attempt(s)")
        }
        for a in detail.analyses {
            print("  analysis \(a.ord): \(a.status), \(a.framesDone ?? 0)/\(a.framesPlanned) frames, \(a.attempts) attempt(s)"
                  + (a.status == .done ? ", artifact \((a.file as NSString).lastPathComponent) (\(a.fileSize ?? 0) bytes)" : ""))
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
                row["recorded_status"] = t.task.status.rawValue
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
            [t.task.id.short, t.status, t.percentText, "\(t.segmentsDone)/\(t.segments)", t.ageText,
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
