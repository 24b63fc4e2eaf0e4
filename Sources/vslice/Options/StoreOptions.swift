import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

struct StoreOptions: ParsableArguments {
    @Option(help: "The job database (default: $VSLICE_HOME/vslice.db, else $XDG_DATA_HOME/vslice/, else ~/.local/share/vslice/).")
    var db: String?

    func open() throws -> JobStore {
        try JobStore(path: db ?? JobStore.defaultPath())
    }
}

/// A task argument as the user gives it: a task ID or its first characters (`JobStore.task` finds the task).
extension TaskID: ExpressibleByArgument {}
