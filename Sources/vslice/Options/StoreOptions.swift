import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

struct StoreOptions: ParsableArguments {
    @Option(help: "The job database (default: $VSLICE_HOME/vslice.db, else $XDG_DATA_HOME/vslice/, else ~/.local/share/vslice/).")
    var db: String?

    /// The default store's folder is made when missing; a `--db` whose folder is missing is a typo more often
    /// than a wish (a store made there would not know the user's tasks): refused, exit 2.
    func open() throws -> JobStore {
        guard let db else { return try JobStore(path: JobStore.defaultPath()) }
        let folder = (URL(fileURLWithPath: db).standardizedFileURL.path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw VSliceError(.usage, "open job store", path: db, reason: "the folder '\(folder)' does not exist (--db names a file in an existing folder)")
        }
        return try JobStore(path: db)
    }
}

/// A task argument as the user gives it: a task ID or its first characters (`JobStore.task` finds the task).
extension TaskID: ExpressibleByArgument {}
