import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

/// What happens around the output: shared by transcode and batch.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Replace an existing output (batch: one that does not verify against its input).")
    var force = false

    @Flag(help: "Keep the task's work folder (segments, audio) after success.")
    var keepTemp = false

    @Flag(help: "Keep every segment's processor log after success (default: those of segments that failed an attempt); `vslice logs TASK` prints them.")
    var keepLogs = false

    @Option(help: "Folder for work folders (default: beside the output).")
    var workDir: String?

    func request(input: String, output: String, settings: TranscodeSettings) -> TranscodeRequest {
        var r = TranscodeRequest(input: input, output: output, settings: settings, force: force, keepTemp: keepTemp, workRoot: workDir)
        r.keepLogs = keepLogs
        return r
    }
}
