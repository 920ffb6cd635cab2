package conformance

import (
	"net/http"
	"strconv"
	"time"
)

// providerJob is a fine-tune job or a batch: something that runs from created to
// end.
type providerJob struct {
	id         string
	model      string
	created    time.Time
	end        time.Time
	count      int // a batch's requests
	isFineTune bool
}

func (j *providerJob) done(now time.Time) bool { return !now.Before(j.end) }

// appendJSON appends j as the API shows it at now.
func (j *providerJob) appendJSON(b []byte, now time.Time) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, j.id)
	if j.isFineTune {
		b = append(b, `,"object":"fine-tune","model":`...)
		b = appendJSONString(b, j.model)
		b = append(b, `,"status":`...)
		if j.done(now) {
			b = append(b, `"completed"`...)
		} else {
			b = append(b, `"running"`...)
		}
	} else {
		completed := 0
		b = append(b, `,"object":"batch","status":`...)
		if j.done(now) {
			completed = j.count
			b = append(b, `"completed"`...)
		} else {
			b = append(b, `"in_progress"`...)
		}
		b = append(b, `,"request_counts":{"total":`...)
		b = strconv.AppendInt(b, int64(j.count), 10)
		b = append(b, `,"completed":`...)
		b = strconv.AppendInt(b, int64(completed), 10)
		b = append(b, `,"failed":0}`...)
	}
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, j.created.Unix(), 10)
	return append(b, '}')
}

// jobs answers the endpoints that do not run a model: the model list,
// fine-tunes and batches (get is a GET, which lists jobs). key and model are
// as the server keeps them (see [maxNameLen]). wait is the reset of a 429.
// s.mu is held.
func (s *Server) jobs(endpoint, id, key, model string, get bool, p *parsedBody, now time.Time) (status int, body []byte, wait time.Duration) {
	if endpoint == Models {
		return http.StatusOK, s.modelsBody, 0
	}
	all := s.fineTunes
	if endpoint == Batches {
		all = s.batches
	}
	list := all[key]
	switch {
	case id != "":
		for i := range list {
			if list[i].id == id {
				return http.StatusOK, list[i].appendJSON(nil, now), 0
			}
		}
		return http.StatusNotFound, togetherError("invalid_request_error", "not_found", "No such job: "+id+"."), 0
	case get:
		b := append(make([]byte, 0, 64+len(list)*128), `{"object":"list","data":[`...)
		for i := range list {
			if i > 0 {
				b = append(b, ',')
			}
			b = list[i].appendJSON(b, now)
		}
		return http.StatusOK, append(b, "]}"...), 0
	}

	// A new job: count those still running, and when the earliest ends.
	running, first := 0, time.Time{}
	for i := range list {
		if !list[i].done(now) {
			running++
			if first.IsZero() || list[i].end.Before(first) {
				first = list[i].end
			}
		}
	}
	s.seq++
	j := providerJob{model: model, created: now, isFineTune: endpoint == FineTunes}
	if j.isFineTune {
		if running >= MaxRunningFineTunes {
			return http.StatusConflict, togetherError("invalid_request_error", "too_many_running_jobs",
				"You have reached the limit of "+strconv.Itoa(MaxRunningFineTunes)+" running fine-tune jobs: wait for one to complete."), 0
		}
		j.id, j.end = "ft-"+strconv.FormatUint(s.seq, 10), now.Add(s.fineTune)
	} else {
		switch {
		case p.count == 0:
			return http.StatusBadRequest, togetherError("invalid_request_error", "empty_batch", "A batch needs at least one request."), 0
		case p.count > MaxBatchRequests:
			return http.StatusBadRequest, togetherError("invalid_request_error", "batch_too_large",
				"A batch holds at most "+strconv.Itoa(MaxBatchRequests)+" requests; this one has "+strconv.Itoa(p.count)+"."), 0
		case running >= MaxBatchesInFlight:
			return http.StatusTooManyRequests, togetherError(ErrorRequestLimited, "too_many_batches",
				"You have "+strconv.Itoa(running)+" batches in flight, the most allowed: wait for one to complete."), first.Sub(now)
		}
		j.id, j.end, j.count = "batch-"+strconv.FormatUint(s.seq, 10), now.Add(s.batch), p.count
	}
	all[key] = append(list, j)
	return http.StatusOK, j.appendJSON(nil, now), 0
}
