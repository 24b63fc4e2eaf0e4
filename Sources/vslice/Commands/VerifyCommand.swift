import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check OUTPUT against its source: frame count, timestamps, DTS order, A/V durations and offset.",
        discussion: """
            EXAMPLES:
              vslice verify out.mp4 --against in.mov
              vslice verify out.mp4 --against in.mov --json | jq .problems
            """)

    @Argument(help: "The transcoded file.")
    var output: String

    @Option(help: "The source it was made from.")
    var against: String

    @Option(name: .customLong("vf"), help: "The filter graph the output was made with (--vf): its frames are checked against the graph's output times on the source.")
    var videoFilter: String?

    @Option(name: .customLong("process-rate"), help: "The rate of the processor it was made with (--process-rate): that many frames per source frame.")
    var processRate: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Skip decoding the output (check timestamps and durations only).")
    var noDecode = false

    func run() throws {
        let rate = try processRate.map { text -> Ratio in
            let parts = text.split(separator: "/")
            guard (1...2).contains(parts.count), let n = Int32(parts[0]), let d = parts.count == 2 ? Int32(parts[1]) : 1, n > 0, d > 0 else {
                throw VSliceError(.usage, "check options", reason: "--process-rate takes an integer or a fraction P/Q, got '\(text)'")
            }
            return Ratio(num: n, den: d)
        }
        let report = try Verifier.verify(output: output, against: against, filter: videoFilter, rate: rate, decode: !noDecode)
        if json {
            try Terminal.printJSON(report)
        } else {
            print(report.ok ? "ok: \(report.outputFrames) frames, timestamps within \(String(format: "%.6f", report.maxTimestampError)) s"
                            : "differs:\n  " + report.problems.joined(separator: "\n  "))
        }
        if !report.ok { throw VSliceError(.processing, "verify", path: output, reason: report.problems.joined(separator: "; ")) }
    }
}
