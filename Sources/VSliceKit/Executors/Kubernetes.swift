import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// `vslice plan IN --emit k8s-job --task-dir DIR`: a Kubernetes Indexed Job of `--jobs` workers (pods) for a task
/// planned with `transcode --executor external --detach`; each runs `vslice segment --work-dir DIR --claim`,
/// which claims and runs element after element until none is left (so a pod's start is paid once, and a
/// `--process-persistent` program stays loaded). A pod that dies is retried by Kubernetes (per index); the
/// element it held is taken back by a worker once its claim's heartbeat is stale. Written as JSON (which
/// `kubectl apply -f` takes as is).
public enum KubernetesJob {
    public struct Options: Sendable {
        public var image: String
        /// A PersistentVolumeClaim holding the input and the work folder, mounted at `mountPath`.
        public var pvc: String?
        /// Where the volume is mounted in the pod; the task's paths must lie under it (default: the task
        /// folder's top-level folder, so the pod sees the same absolute paths as the coordinator).
        public var mountPath: String?
        /// Pod attempts per index (`--max-attempts`): backoffLimitPerIndex = this − 1.
        public var maxAttempts: Int
        public init(image: String, pvc: String? = nil, mountPath: String? = nil, maxAttempts: Int = 3) {
            self.image = image
            self.pvc = pvc
            self.mountPath = mountPath
            self.maxAttempts = maxAttempts
        }
    }

    /// The manifest for the task planned in `taskDir`, whose input must be `input`.
    public static func manifest(input: String, taskDir: String, options: Options) throws(VSliceError) -> Data {
        let dir = Paths.absolute(taskDir)
        let order = try WorkOrder.read(workDir: dir)
        guard order.input == Paths.absolute(input) else {
            throw VSliceError(.usage, "emit k8s-job", path: input, reason: "the task in \(dir) transcodes \(order.input), not this input")
        }
        let limits = Transcoder.RunOptions.Limits.maxAttempts
        guard limits.contains(options.maxAttempts) else {
            throw VSliceError(.usage, "emit k8s-job", reason: "--max-attempts takes \(limits.lowerBound) to \(limits.upperBound), got \(options.maxAttempts)")
        }
        let top = "/" + (dir.split(separator: "/").first.map(String.init) ?? "")
        let mount = Paths.absolute(options.mountPath ?? top)
        if options.pvc != nil {
            for path in [dir, order.input] where !(path + "/").hasPrefix(mount == "/" ? "/" : mount + "/") {
                throw VSliceError(.usage, "emit k8s-job", path: path,
                                  reason: "not under the volume's mount path \(mount): pods would not see it (--mount-path)")
            }
        }
        // Workers, not elements: as many as --jobs (no more than there are elements).
        let workers = max(1, min(order.settings.jobs, order.elementCount))
        let name = "vslice-" + order.task.short
        let labels: [String: Any] = ["app.kubernetes.io/name": "vslice", "vslice.task": order.task.rawValue]
        var container: [String: Any] = [
            "name": "vslice",
            "image": options.image,
            "command": ["vslice", "segment", "--work-dir", dir, "--claim", "--max-attempts", String(options.maxAttempts)],
        ]
        var podSpec: [String: Any] = ["restartPolicy": "Never", "containers": [container]]
        if let pvc = options.pvc {
            container["volumeMounts"] = [["name": "work", "mountPath": mount]]
            podSpec["containers"] = [container]
            podSpec["volumes"] = [["name": "work", "persistentVolumeClaim": ["claimName": pvc]]]
        }
        let job: [String: Any] = [
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": ["name": name, "labels": labels],
            "spec": [
                "completionMode": "Indexed",
                "completions": workers,
                "parallelism": workers,
                // Each index is retried on its own; a deterministic failure (exit 2, 3 or 7) is not retried.
                "backoffLimitPerIndex": options.maxAttempts - 1,
                "podFailurePolicy": ["rules": [
                    ["action": "FailIndex",
                     "onExitCodes": ["containerName": "vslice", "operator": "In",
                                     "values": [VSliceError.Kind.usage.exitCode, VSliceError.Kind.input.exitCode,
                                                VSliceError.deterministicWorkerExit].map(Int.init)]],
                    ["action": "Ignore", "onPodConditions": [["type": "DisruptionTarget"]]],
                ]],
                "template": ["metadata": ["labels": labels], "spec": podSpec],
            ] as [String: Any],
        ]
        do {
            return try JSONSerialization.data(withJSONObject: job, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw VSliceError(.processing, "emit k8s-job", reason: plainReason(error))
        }
    }
}
