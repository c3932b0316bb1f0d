-- wrk script for flask_overhead.py: a different item id on each request.
counter = 0
request = function()
   counter = counter + 1
   return wrk.format("GET", "/items/" .. (counter % 1000))
end
