import ArgumentParser
import Foundation
import Logging
import VSliceKit

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
            print("\(item.task.short)  \(item.status.padding(toLength: 11, withPad: " ", startingAt: 0)) \(item.reason)")
            for path in item.removed { print("    \(dryRun ? "would remove" : "removed") \(path)") }
        }
        let total = items.map(\.bytes).reduce(0, +)
        print(String(format: "%@ %d task(s), %.1f MB", dryRun ? "would free" : "freed", items.count, Double(total) / 1e6))
    }
}
