import ArgumentParser
import Foundation
import VSliceKit

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Predict a finished task's wall time on 1, 2, 4 … 256 workers from its recorded traces.",
        discussion: """
            Replays the task's elements (video segments and audio pieces: each done attempt's CPU time, its \
            start-up, a worker's process start, the scheduler's measured latency, the ledger's writes) in the \
            executor's dispatch order on N workers, one element at a time each, between the coordinator's serial \
            steps (probe and the checks before any work, plan, mux, verify, publish; the audio node beside the \
            elements). Prints the predicted wall time, speed-up and where the workers' time goes, and checks the \
            prediction for the run's own number of workers against its measured wall time. Without TASK: the \
            newest finished task.

            EXAMPLES:
              vslice transcode in.mp4 -o out.mp4 -q && vslice report  the task just finished
              vslice transcode in.mp4 -o out.mp4 -q && vslice report --workers 1,2,3,4 --json
            """)

    @Argument(help: "A task ID (or its first characters); default: the newest finished task.")
    var task: TaskID?

    @Option(help: "Numbers of workers to predict for, comma-separated (default 1,2,4,…,256).")
    var workers: String?

    @Flag(help: "Print JSON: one object per number of workers (workers, wall_seconds, speedup, serial_seconds, encode_seconds, efficiency, work_share, fixed_share, idle_share).")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let counts = try ReportCommand.parseWorkers(workers)
        let store = try store.open()
        guard let id = try task ?? store.tasks().last(where: { $0.status == .done })?.id else {
            throw VSliceError(.usage, "report", reason: "no finished task in the job store")
        }
        let report = try TaskReport.load(store: store, task: id)
        let points = ScalingModel.curve(report.input, workers: counts)
        if json {
            try Terminal.printJSON(points)
        } else {
            print(report.text(points))
        }
    }

    /// "1,2,4" → [1, 2, 4]; each from 1 to 100000.
    static func parseWorkers(_ text: String?) throws(VSliceError) -> [Int] {
        guard let text else { return ScalingModel.defaultWorkers }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [Int] = []
        for p in parts {
            guard let n = Int(p), (1...100_000).contains(n) else {
                throw VSliceError(.usage, "check options", reason: "--workers takes whole numbers from 1 to 100000, comma-separated; got '\(p)'")
            }
            out.append(n)
        }
        return out
    }
}
