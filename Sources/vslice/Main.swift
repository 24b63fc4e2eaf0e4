import ArgumentParser
import Foundation
import VSliceKit

@main
struct VSlice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vslice",
        abstract: "Transcode a video faster: split it into segments, encode them in parallel, merge.",
        discussion: """
            Exit codes: 0 ok; 1 processing failed; 2 usage error; 3 input unreadable, invalid or \
            unsupported; 4 output exists (use --force); 5 resume refused (input or settings changed, task \
            busy); 6 some inputs of a batch (or tasks of resume --all) failed; 130 interrupted or cancelled (an \
            interrupted task stays resumable).

            EXAMPLES:
              vslice transcode in.mov -o out.mp4 --crf 23
              vslice batch ~/Videos -o ~/out --recursive
              vslice status
              vslice help transcode
            """,
        version: VSliceKit.version,
        subcommands: [TranscodeCommand.self, BatchCommand.self, PlanCommand.self, VerifyCommand.self, ProbeCommand.self,
                      StatusCommand.self, ReportCommand.self, ResumeCommand.self, LogsCommand.self, CancelCommand.self, GCCommand.self, SegmentCommand.self])

    /// Like ArgumentParser's `main()`, but with vslice's documented exit codes.
    static func main() {
        FFmpegLog.set(ProcessInfo.processInfo.environment["VSLICE_FFMPEG_LOG"] == "1" ? .warning : .quiet)
        do {
            var arguments = Array(CommandLine.arguments.dropFirst())
            if let spec = Arguments.spec(VSlice.self) { arguments = try Arguments.normalize(arguments, root: spec) }
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as VSliceError {
            fail(error.description, error.exitCode)
        } catch let failure as BatchFailure {
            fail(failure.message, BatchFailure.exitCode)
        } catch let error as NSError where [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains(error.domain) {
            // A file or system error no command put in its own words: the system's words, one line.
            fail(plainReason(error), VSliceError.Kind.processing.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = fullMessage(for: error)
            if code.rawValue == 130 { fail(message.isEmpty ? "interrupted" : message, 130) }
            // One line, like every other error: ArgumentParser's first line, and where the help is.
            let first = VSlice.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? message
            let command = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") }
            let help = command.map { "vslice help \($0)" } ?? "vslice --help"
            // ArgumentParser's own usage failures become vslice's usage code.
            fail("usage: \(first) (see '\(help)')",
                 code == .validationFailure || code.rawValue == 64 ? VSliceError.Kind.usage.exitCode : code.rawValue)
        }
    }

    /// Ends the process on a failure: one line on stderr, and with `--json`, unless an event already told it
    /// (`task_failed`, `batch_done`), one `error` event (`exit_code`, `error`) on stdout for the script reading it.
    static func fail(_ message: String, _ code: Int32) -> Never {
        Terminal.printError(message)
        if CommandLine.arguments.contains("--json") && !EventWriter.outcomeReported.load(ordering: .relaxed) {
            EventWriter().emit("error", ["exit_code": Int(code), "error": message])
        }
        Foundation.exit(code)
    }
}

enum Terminal {
    static func printError(_ message: String) {
        FileHandle.standardError.write(Data(("vslice: " + message + "\n").utf8))
    }

    /// Prints `value` as the command's one JSON document: a failure after it adds no `error` event (stdout
    /// stays one JSON value).
    static func printJSON<T: Encodable>(_ value: T) throws {
        EventWriter.outcomeReported.store(true, ordering: .relaxed)
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try enc.encode(value)
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
