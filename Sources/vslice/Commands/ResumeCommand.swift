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
        var batches: [(BatchRecord, BatchRequest?)] = []
        if let task {
            ids = [task]
        } else {
            let (resume, passedOver) = try store.tasksToResumeAll()
            ids = resume.map(\.id)
            batches = try store.batchesToResume().map { ($0, try? JSONDecoder().decode(BatchRequest.self, from: Data($0.requestJson.utf8))) }
            if !runner.quiet && !runner.json {
                for t in passedOver {
                    print("pass over \(t.id.short) (\(t.input)): it would fail again — \(t.error ?? "failed"); `vslice resume \(t.id.short)` tries it anyway")
                }
                if ids.isEmpty && batches.isEmpty { print("nothing to resume") }
            }
        }
        var failures = try resumeTasks(ids, store: store)
        // An interrupted batch: its unfinished task was resumed above; the inputs it had not started are done now.
        for (record, request) in batches {
            if Cancellation.stopRequested { break }
            do {
                guard let request else {
                    throw VSliceError(.resumeRefused, "resume batch", path: record.dir, reason: "its request cannot be read; run the same batch command again")
                }
                if !runner.quiet && !runner.json { print("carrying on the batch \(record.dir) → \(record.outDir)") }
                try BatchDriver(batch: try BatchRunner(request), runner: runner).run(store: store)
            } catch let error as VSliceError {
                if error.kind == .interrupted { throw error }
                Terminal.printError(error.description)
                failures += 1
            } catch let failure as BatchFailure {
                Terminal.printError("batch \(record.dir): \(failure.message)")
                failures += 1
            }
        }
        if failures > 0 {
            throw BatchFailure(message: "\(failures) of \(ids.count + batches.count) tasks and batches failed")
        }
    }

    /// Resumes each task in turn; returns how many failed (a single task's error is thrown).
    private func resumeTasks(_ ids: [TaskID], store: JobStore) throws -> Int {
        var failures = 0
        for id in ids {
            if Cancellation.stopRequested { break }
            let t = try store.task(id)
            Signals.remoteRun.store((t?.storedRequest?.executor.kind ?? .local) != .local, ordering: .relaxed)
            Signals.remoteStops.store(t?.storedRequest?.executor.kind == .ray, ordering: .relaxed)
            let outcome = runner.session.run(input: t?.input ?? id.rawValue, output: t?.output ?? "") { onEvent throws(VSliceError) in
                try Transcoder.resume(taskId: id, store: store, logger: runner.logger, options: runner.pipelineOptions(for: t?.storedRequest),
                                      jobs: jobs, onEvent: onEvent)
            }
            if let error = outcome.error {
                if task != nil { throw error }
                Terminal.printError(error.description)
                failures += 1
                if error.kind == .interrupted { throw error }
            }
        }
        return failures
    }
}
