import ArgumentParser
import Foundation
import VSliceKit

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a task's processor logs (the --process program's stderr, one log per segment).",
        discussion: """
            Each segment's log is seg-NNNNN.process.log in the task's work folder while it exists; when the task \
            succeeds, the logs of segments that failed an attempt (every one with --keep-logs) are kept in \
            logs/TASK-ID beside the job store. Each log is printed after a line naming it.

            EXAMPLES:
              vslice logs 20da0bc1
              vslice logs 20da0bc1 3
            """)

    @Argument(help: "A task ID (or its first characters).")
    var task: TaskID

    @Argument(help: "Only this segment's log.")
    var segment: Int?

    @OptionGroup var store: StoreOptions

    func run() throws {
        let store = try store.open()
        guard let t = try store.task(task) else { throw VSliceError(.usage, "logs", reason: "no task '\(task)'") }
        let logs = ProcessorLogs.find(t, store: store, segment: segment)
        guard !logs.isEmpty else {
            let which = segment.map { "segment \($0) of task \(t.id.short)" } ?? "task \(t.id.short)"
            print("no processor log for \(which): none was written (no --process, or it said nothing), or it went with the work folder "
                  + "(kept after success only for segments that failed an attempt, or with --keep-logs)")
            return
        }
        for (n, path) in logs {
            print("==> segment \(n): \(path) <==")
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            print(text, terminator: text.hasSuffix("\n") || text.isEmpty ? "" : "\n")
        }
    }
}
