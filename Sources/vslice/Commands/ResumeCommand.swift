import ArgumentParser
import Foundation
import Logging
import VSliceKit

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume an unfinished task (or all of them) with the options it was started with.",
        discussion: """
            Done segments whose files are intact are kept; the rest is redone. Refused (exit 5) when the input \
            changed or another live process holds the task. With --all, tasks run one after the other, passing \
            over failed tasks that would fail the same way again (bad input or options, a refused resume; each \
            named, resume its ID to try it anyway); the exit code is 0 only if every one finished, else 6.

            EXAMPLES:
              vslice resume 20da0bc1
              vslice resume 20da0bc1 --jobs 1
              vslice resume --all -q
            """)

    @Argument(help: "A task ID (or its first characters), as `vslice status` lists them.")
    var task: TaskID?

    @Flag(help: "Resume every unfinished task not held by a live process.")
    var all = false

    @Option(help: "Segments encoded at once (default: as the task was started).")
    var jobs: Int?

    @OptionGroup var runner: RunOptions

    func validate() throws {
        if (task == nil) == !all { throw ValidationError("give a task ID or --all") }
        if runner.fresh { throw ValidationError("--fresh does not apply to resume; use `transcode --fresh`") }
        if let jobs, !TranscodeSettings.Limits.jobs.contains(jobs) {
            throw ValidationError("--jobs takes \(TranscodeSettings.Limits.jobs.lowerBound) to \(TranscodeSettings.Limits.jobs.upperBound), got \(jobs)")
        }
    }

    func run() throws {
        runner.prepare()
        let store = try runner.store.open()
        let ids: [TaskID]
        if let task {
            ids = [task]
        } else {
            let (resume, passedOver) = try store.tasksToResumeAll()
            ids = resume.map(\.id)
            if !runner.quiet && !runner.json {
                for t in passedOver {
                    print("pass over \(t.id.short) (\(t.input)): it would fail again — \(t.error ?? "failed"); `vslice resume \(t.id.short)` tries it anyway")
                }
                if ids.isEmpty { print("nothing to resume") }
            }
        }
        var failures: [VSliceError] = []
        for id in ids {
            if Cancellation.stopRequested { break }
            let t = try store.task(id)
            Signals.remoteRun.store((t?.storedRequest?.executor.kind ?? .local) != .local, ordering: .relaxed)
            Signals.remoteStops.store(t?.storedRequest?.executor.kind == .ray, ordering: .relaxed)
            let outcome = runner.session.run(input: t?.input ?? id.rawValue, output: t?.output ?? "") { onEvent throws(VSliceError) in
                try Transcoder.resume(taskId: id, store: store, logger: runner.logger, options: runner.pipelineOptions,
                                      jobs: jobs, onEvent: onEvent)
            }
            if let error = outcome.error {
                if task != nil { throw error }
                Terminal.printError(error.description)
                failures.append(error)
                if error.kind == .interrupted { throw error }
            }
        }
        if !failures.isEmpty {
            throw BatchFailure(message: "\(failures.count) of \(ids.count) tasks failed")
        }
    }
}
