import ArgumentParser
import Foundation
import Logging
import VSliceKit

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
    var task: TaskID

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
            print("task \(t.id.short) is already \(t.status)" + (outcome.workRemoved ? "; work folder removed" : ""))
        } else {
            print("task \(t.id.short) cancelled" + (outcome.running ? "; its process (pid \(t.leasePid ?? 0)) stops at its next heartbeat"
                                                                        : outcome.workRemoved ? "; work folder removed" : ""))
        }
        // The ledger says cancelled, but elements may still run: a failure the operator must act on.
        if let why = outcome.schedulerError {
            throw VSliceError(.processing, "cancel task \(t.id.short)", reason: "its queued elements were not cancelled: \(why)")
        }
    }
}
